"""Undoing Content-Encoding within a size limit (finding 7): gzip, deflate, bombs, garbage."""

from __future__ import annotations

import gzip
import http.server
import json
import struct
import threading
import tracemalloc
import zlib
from collections.abc import Callable, Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from segment.analytics import request as segment_request

from segment_raindrop.core.content_encoding import (
    MAX_CODINGS,
    STEP_BYTES,
    BodyTooLarge,
    UnsupportedEncoding,
    decode_body,
)
from segment_raindrop.core.request_auth import AuthMethod, authenticate, sign
from segment_raindrop.core.segment_body import BodyError, parse_body

MiB = 1 << 20
LIMIT = 6 * MiB
BODY = json.dumps(
    {
        "batch": [
            {"type": "track", "event": "AI Chat Completed", "userId": f"u{i}"} for i in range(50)
        ]
    }
).encode()


def zlib_deflate(data: bytes, level: int = 6) -> bytes:
    return zlib.compress(data, level)


def raw_deflate(data: bytes, level: int = 6) -> bytes:
    compressor = zlib.compressobj(level, zlib.DEFLATED, -zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


# -- identity ----------------------------------------------------------------------------------


@pytest.mark.parametrize("header", [None, "", "identity", "IDENTITY", " identity , identity "])
def test_identity_is_the_raw_body(header: str | None) -> None:
    assert decode_body(BODY, header, max_bytes=LIMIT) == BODY


def test_identity_is_held_to_the_limit_too() -> None:
    assert decode_body(BODY, None, max_bytes=len(BODY)) == BODY
    with pytest.raises(BodyTooLarge):
        decode_body(BODY, None, max_bytes=len(BODY) - 1)


# -- round trips -------------------------------------------------------------------------------


@pytest.mark.parametrize("header", ["gzip", "x-gzip", "GZIP", "X-Gzip", " gzip ", "identity, gzip"])
@pytest.mark.parametrize("level", [0, 1, 9])
def test_gzip_round_trip(header: str, level: int) -> None:
    assert decode_body(gzip.compress(BODY, level), header, max_bytes=LIMIT) == BODY


@pytest.mark.parametrize("compress", [zlib_deflate, raw_deflate], ids=["zlib", "raw"])
@pytest.mark.parametrize("header", ["deflate", "Deflate", "DEFLATE"])
@pytest.mark.parametrize("level", [0, 1, 9])  # level 0 is stored blocks: the header edge case
def test_deflate_round_trip_zlib_wrapped_or_raw(
    compress: Callable[..., bytes], header: str, level: int
) -> None:
    assert decode_body(compress(BODY, level), header, max_bytes=LIMIT) == BODY


@pytest.mark.parametrize("compress", [gzip.compress, zlib_deflate, raw_deflate])
def test_empty_payload_round_trip(compress: Callable[..., bytes]) -> None:
    name = "gzip" if compress is gzip.compress else "deflate"
    assert decode_body(compress(b""), name, max_bytes=LIMIT) == b""


def test_stacked_codings_are_undone_last_applied_first() -> None:
    # "gzip, deflate": gzip was applied first, then deflate.
    assert decode_body(zlib_deflate(gzip.compress(BODY)), "gzip, deflate", max_bytes=LIMIT) == BODY
    assert decode_body(gzip.compress(zlib_deflate(BODY)), "deflate,gzip", max_bytes=LIMIT) == BODY
    with pytest.raises(BodyError):
        decode_body(gzip.compress(zlib_deflate(BODY)), "gzip, deflate", max_bytes=LIMIT)


def test_more_codings_than_allowed_are_unsupported() -> None:
    body = BODY
    for _ in range(MAX_CODINGS + 1):
        body = gzip.compress(body)
    with pytest.raises(UnsupportedEncoding):
        decode_body(body, ", ".join(["gzip"] * (MAX_CODINGS + 1)), max_bytes=LIMIT)


@pytest.mark.parametrize("size", [STEP_BYTES - 1, STEP_BYTES, STEP_BYTES + 1, 3 * STEP_BYTES + 7])
@pytest.mark.parametrize("header", ["gzip", "deflate"])
def test_the_limit_is_exact_across_step_boundaries(size: int, header: str) -> None:
    data = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    encoded = gzip.compress(data) if header == "gzip" else zlib_deflate(data)
    assert decode_body(encoded, header, max_bytes=size) == data
    with pytest.raises(BodyTooLarge) as refused:
        decode_body(encoded, header, max_bytes=size - 1)
    assert refused.value.max_bytes == size - 1


@settings(max_examples=200, deadline=None)
@given(
    data=st.binary(max_size=4096),
    header=st.sampled_from(["gzip", "x-gzip", "deflate"]),
    level=st.integers(0, 9),
    slack=st.integers(-3, 3),
)
def test_round_trip_or_too_large(data: bytes, header: str, level: int, slack: int) -> None:
    encoded = zlib_deflate(data, level) if header == "deflate" else gzip.compress(data, level)
    limit = max(len(data) + slack, 0)
    if len(data) <= limit:
        assert decode_body(encoded, header, max_bytes=limit) == data
    else:
        with pytest.raises(BodyTooLarge):
            decode_body(encoded, header, max_bytes=limit)


# -- unsupported codings -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "header", ["br", "compress", "x-compress", "zstd", "gzip, br", "*", "gzip;q=1", "gzip deflate"]
)
def test_unsupported_codings(header: str) -> None:
    with pytest.raises(UnsupportedEncoding) as refused:
        decode_body(gzip.compress(BODY), header, max_bytes=LIMIT)
    # A fixed phrase: the caller's header is not echoed back.
    assert "gzip, x-gzip or deflate" in str(refused.value)
    assert "zstd" not in str(refused.value)


# -- corrupt, truncated and trailing bytes -----------------------------------------------------


@pytest.mark.parametrize("header", ["gzip", "deflate"])
def test_a_plain_body_declared_compressed_is_a_body_error(header: str) -> None:
    for body in (BODY, b"", b"\x1f", b"\x78"):
        with pytest.raises(BodyError):
            decode_body(body, header, max_bytes=LIMIT)


@pytest.mark.parametrize(
    ("header", "compress"),
    [("gzip", gzip.compress), ("deflate", zlib_deflate), ("deflate", raw_deflate)],
    ids=["gzip", "zlib", "raw"],
)
def test_every_truncation_is_a_body_error(header: str, compress: Callable[..., bytes]) -> None:
    encoded = compress(BODY)
    for cut in range(1, len(encoded)):
        with pytest.raises(BodyError):
            decode_body(encoded[:cut], header, max_bytes=LIMIT)


def test_a_wrong_gzip_checksum_is_a_body_error() -> None:
    encoded = bytearray(gzip.compress(BODY))
    encoded[-8] ^= 0xFF  # the CRC-32 in the trailer
    with pytest.raises(BodyError, match="not valid gzip"):
        decode_body(bytes(encoded), "gzip", max_bytes=LIMIT)


def test_a_corrupt_gzip_stream_is_a_body_error() -> None:
    encoded = bytearray(gzip.compress(BODY))
    encoded[20] ^= 0x55
    with pytest.raises(BodyError):
        decode_body(bytes(encoded), "gzip", max_bytes=LIMIT)


@pytest.mark.parametrize("trailer", [b"x", b"garbage", b"\x00" * 8, b"\x1f"])
def test_trailing_bytes_after_gzip_are_refused(trailer: bytes) -> None:
    with pytest.raises(BodyError, match="trailing bytes"):
        decode_body(gzip.compress(BODY) + trailer, "gzip", max_bytes=LIMIT)


@pytest.mark.parametrize("compress", [zlib_deflate, raw_deflate], ids=["zlib", "raw"])
def test_trailing_bytes_after_deflate_are_refused(compress: Callable[..., bytes]) -> None:
    with pytest.raises(BodyError, match="trailing bytes"):
        decode_body(compress(BODY) + b"tail", "deflate", max_bytes=LIMIT)


def test_errors_do_not_echo_the_body() -> None:
    secret_prompt = b'{"input":"my password is hunter2"}'
    for header, body in (("gzip", secret_prompt), ("deflate", gzip.compress(secret_prompt)[:-3])):
        with pytest.raises(BodyError) as refused:
            decode_body(body, header, max_bytes=LIMIT)
        assert "hunter2" not in str(refused.value)


# -- concatenated gzip members -----------------------------------------------------------------


def test_concatenated_gzip_members_are_one_body() -> None:
    # RFC 1952 defines a gzip file as a series of members; gzip.decompress reads them all.
    encoded = gzip.compress(b'{"batch":[') + gzip.compress(b"]}")
    assert decode_body(encoded, "gzip", max_bytes=LIMIT) == b'{"batch":[]}'
    assert decode_body(encoded, "gzip", max_bytes=LIMIT) == gzip.decompress(encoded)


def test_the_limit_covers_all_members_together() -> None:
    member = gzip.compress(b"a" * 1000)
    assert decode_body(member * 3, "gzip", max_bytes=3000) == b"a" * 3000
    with pytest.raises(BodyTooLarge):
        decode_body(member * 3, "gzip", max_bytes=2999)


def test_a_truncated_second_member_is_a_body_error() -> None:
    encoded = gzip.compress(BODY) + gzip.compress(BODY)[:-4]
    with pytest.raises(BodyError, match="truncated"):
        decode_body(encoded, "gzip", max_bytes=LIMIT)


# -- zip bombs ----------------------------------------------------------------------------------


ZERO_MIB_BLOCKS = 1024


def _zero_mib_block() -> tuple[bytes, bytes]:
    """(one MiB of zeros as a self-contained deflate block, the final empty block)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    # A full flush ends the block on a byte boundary with no back-references past it, so the
    # block can be repeated: n copies and the final block are n MiB of zeros.
    block = compressor.compress(bytes(MiB)) + compressor.flush(zlib.Z_FULL_FLUSH)
    return block, compressor.flush()


def _gzip_member(deflate: bytes, crc: int, size: int) -> bytes:
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    return header + deflate + struct.pack("<II", crc, size & 0xFFFFFFFF)


@pytest.fixture(scope="module")
def gigabyte_of_zeros() -> dict[str, bytes]:
    """1 GiB of zeros as gzip and as raw deflate, about 1 MB each, without compressing 1 GiB."""
    block, final = _zero_mib_block()
    deflate = block * ZERO_MIB_BLOCKS + final
    crc, zeros = 0, bytes(MiB)
    for _ in range(ZERO_MIB_BLOCKS):
        crc = zlib.crc32(zeros, crc)
    return {"gzip": _gzip_member(deflate, crc, ZERO_MIB_BLOCKS * MiB), "deflate": deflate}


def test_the_bomb_construction_holds(gigabyte_of_zeros: dict[str, bytes]) -> None:
    # Otherwise the bomb tests prove nothing: repeated blocks really are that many MiB of zeros
    # (checked on three, which Python's own gzip module decodes), and the bomb is ~1 MB.
    block, final = _zero_mib_block()
    three = _gzip_member(block * 3 + final, zlib.crc32(bytes(3 * MiB)), 3 * MiB)
    assert gzip.decompress(three) == bytes(3 * MiB)
    assert gigabyte_of_zeros["deflate"] == block * ZERO_MIB_BLOCKS + final
    assert gigabyte_of_zeros["gzip"][-4:] == struct.pack("<I", (ZERO_MIB_BLOCKS * MiB) % 2**32)
    assert len(gigabyte_of_zeros["gzip"]) < 2 * MiB


@pytest.mark.parametrize("header", ["gzip", "deflate"])
def test_a_zip_bomb_is_refused_with_bounded_memory(
    gigabyte_of_zeros: dict[str, bytes], header: str
) -> None:
    tracemalloc.start()
    try:
        with pytest.raises(BodyTooLarge):
            decode_body(gigabyte_of_zeros[header], header, max_bytes=LIMIT)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # The output buffer (with up to an eighth spare) and one step: nowhere near 1 GiB.
    assert peak < LIMIT * 9 // 8 + 4 * STEP_BYTES + 256 * 1024


def test_a_bomb_inside_a_stacked_coding_is_held_to_the_limit(
    gigabyte_of_zeros: dict[str, bytes],
) -> None:
    # deflate(gzip(1 GiB)): the outer layer is small, the inner one explodes.
    outer = zlib_deflate(gigabyte_of_zeros["gzip"])
    tracemalloc.start()
    try:
        with pytest.raises(BodyTooLarge):
            decode_body(outer, "gzip, deflate", max_bytes=LIMIT)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # The intermediate gzip (about 1 MB, copied once into bytes) plus the bounded output.
    assert peak < LIMIT * 9 // 8 + 3 * len(gigabyte_of_zeros["gzip"]) + 256 * 1024


# -- the body the webhook authenticates --------------------------------------------------------


def test_the_signature_is_checked_on_the_decoded_body() -> None:
    # Segment signs the JSON it serialised; a compressed request is authenticated after decoding.
    secret = "shared"
    headers = {"x-signature": sign(BODY, secret)}
    encoded = gzip.compress(BODY)
    decoded = decode_body(encoded, "gzip", max_bytes=LIMIT)
    decision = authenticate(headers, decoded, webhook_token=None, shared_secret=secret)
    assert decision.method is AuthMethod.SIGNATURE
    assert not authenticate(headers, encoded, webhook_token=None, shared_secret=secret).ok


class _CaptureHandler(http.server.BaseHTTPRequestHandler):
    captured: list[tuple[dict[str, str], bytes]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.captured.append((dict(self.headers.items()), body))
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def capture_server() -> Iterator[tuple[str, list[tuple[dict[str, str], bytes]]]]:
    captured: list[tuple[dict[str, str], bytes]] = []
    handler = type("Handler", (_CaptureHandler,), {"captured": captured})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", captured
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_what_segment_analytics_python_sends_with_gzip(
    capture_server: tuple[str, list[tuple[dict[str, str], bytes]]],
) -> None:
    # The real client's request (finding 7: it used to get a 400 "body is not valid UTF-8").
    url, captured = capture_server
    events = [{"type": "track", "event": "AI Chat Completed", "userId": "u1", "messageId": "m1"}]
    segment_request.post("write-key", host=url, gzip=True, batch=events)
    [(headers, raw)] = captured
    assert headers["Content-Encoding"] == "gzip"
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    parsed = parse_body(decode_body(raw, headers["Content-Encoding"], max_bytes=LIMIT))
    assert parsed.shape == "batch"
    assert parsed.events == events
