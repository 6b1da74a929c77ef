// Compile every .py under a directory to CPython 3.13 bytecode, as Lambda's python3.13 runtime
// reads it: `__pycache__/<name>.cpython-313.pyc`, hash-based and unchecked (PEP 552).
//
// This machine has no CPython 3.13; the npm package `pyodide` (0.29.x) carries CPython 3.13
// built for WebAssembly, and bytecode depends only on the minor version, not the platform.
// One interpreter compiles the whole tree (loading it takes ~2 s). The directory is mounted at
// /var/task, Lambda's code directory, so the file names recorded in the code objects are the
// ones Lambda will show. Hash randomisation is off, so the output is the same on every run.
//
// Usage: node infra/bytecode.mjs <directory>   (prints {"python": ..., "compiled": N} on stdout)
import { loadPyodide } from "pyodide";

const [directory] = process.argv.slice(2);
if (!directory) {
  console.error("usage: node infra/bytecode.mjs <directory>");
  process.exit(2);
}
const messages = [];
const py = await loadPyodide({
  env: { PYTHONHASHSEED: "0", PYTHONDONTWRITEBYTECODE: "1" },
  stdout: (line) => messages.push(line),
  stderr: (line) => messages.push(line),
});
py.mountNodeFS("/var/task", directory);
const result = py.runPython(`
import importlib.util
import json
import pathlib
import py_compile
import sys

failed = []
compiled = 0
for source in sorted(pathlib.Path("/var/task").rglob("*.py")):
    try:
        py_compile.compile(
            str(source),
            cfile=importlib.util.cache_from_source(str(source)),
            doraise=True,
            invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
        )
        compiled += 1
    except py_compile.PyCompileError as error:
        failed.append(f"{source.relative_to('/var/task')}: {error.exc_type_name}")
json.dumps({
    "python": ".".join(map(str, sys.version_info[:3])),
    "magic": importlib.util.MAGIC_NUMBER.hex(),
    "cache_tag": sys.implementation.cache_tag,
    "compiled": compiled,
    "failed": failed,
})
`);
const summary = JSON.parse(result);
if (messages.length) console.error(messages.join("\n"));
console.log(JSON.stringify(summary));
process.exit(summary.failed.length ? 1 : 0);
