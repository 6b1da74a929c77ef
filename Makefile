# Every target installs what it needs: uv (if missing), the locked Python environment and,
# for CDK targets, the pinned CDK CLI from package.json.
SHELL := /bin/bash
.DEFAULT_GOAL := help

export PATH := $(HOME)/.local/bin:$(PATH)
export UV_PYTHON_DOWNLOADS := never
export CDK_DISABLE_VERSION_CHECK := 1
export CDK_DISABLE_CLI_TELEMETRY := true
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20

UV ?= uv
RUN := $(UV) run --frozen --all-extras
# Local mode and its samples: the CLI extra and Raindrop's SDK, without the CDK library, cdk-nag,
# cfn-lint and the test and benchmark tools (an environment a quarter the size; docs/local-mode.md).
# Adds to an environment `make sync` installed, removing nothing.
LOCAL_RUN := $(UV) run --frozen --no-default-groups --extra cli --group local

.PHONY: help uv sync lint format typecheck test test-only local sample bench soak mutate synth diff deploy destroy npm clean

help:  ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

uv:
	@command -v $(UV) >/dev/null 2>&1 || { \
		echo "installing uv"; \
		python3 -m pip install --user --quiet --disable-pip-version-check uv || \
		python3 -m pip install --quiet --disable-pip-version-check --break-system-packages uv; }

sync: uv  ## Install the locked Python environment
	@$(UV) sync --frozen --all-extras --quiet

npm:
	@[ -x node_modules/.bin/cdk ] && [ -f node_modules/pyodide/pyodide.asm.wasm ] || npm ci --no-audit --no-fund --loglevel=error

lint: sync  ## ruff (lint and format check)
	$(RUN) ruff check .
	$(RUN) ruff format --check .

format: sync  ## Apply ruff's fixes and formatting
	$(RUN) ruff check --fix .
	$(RUN) ruff format .

typecheck: sync  ## mypy --strict on lambda_src/, tools/ and infra/
	$(RUN) mypy

test: lint typecheck test-only  ## Lint, types and the whole test suite (what CI runs)

test-only: sync npm
	$(RUN) pytest

local: uv  ## Run the forwarder locally (moto + local Raindrop receiver)
	$(LOCAL_RUN) segment-raindrop local

sample: uv  ## Send a realistic AI conversation to the running local mode (webhook, then EventBridge), then through Raindrop's SDK
	$(LOCAL_RUN) segment-raindrop send-sample
	$(LOCAL_RUN) segment-raindrop send-sample --via eventbridge
	$(LOCAL_RUN) segment-raindrop send-sdk-sample

bench: sync npm  ## Run the benchmarks; writes docs/benchmarks.md and docs/benchmarks.png
	$(RUN) python -m bench

SOAK_SECONDS ?= 120
soak: sync  ## Local mode under random traffic and faults, then healed: exits 1 if any event is lost
	SOAK_SECONDS=$(SOAK_SECONDS) $(RUN) python -m bench.soak

mutate: sync  ## Mutation testing of the loss-critical code (not part of test; ~15 min)
	$(RUN) python -m bench.mutate $(MUTATE_ARGS)

synth: sync npm  ## Synthesise the CloudFormation template (no Docker, no AWS credentials)
	npx cdk synth --quiet --no-notices $(CDK_ARGS)

diff: sync npm  ## Compare the stack with what is deployed
	npx cdk diff --no-notices $(CDK_ARGS)

# Asks before deploying IAM or security-group widenings; CI (no terminal): REQUIRE_APPROVAL=never.
# (Not through CDK_ARGS: the CDK refuses --require-approval given twice.)
REQUIRE_APPROVAL ?= broadening

deploy: sync npm  ## Deploy the stack into the current AWS account (CI: REQUIRE_APPROVAL=never)
	npx cdk deploy --no-notices --require-approval $(REQUIRE_APPROVAL) $(CDK_ARGS)

destroy: sync npm  ## Remove the stack
	npx cdk destroy --no-notices $(CDK_ARGS)

clean:
	rm -rf cdk.out .pytest_cache .mypy_cache .ruff_cache .hypothesis
