"""Undoing a request's ``Content-Encoding`` (gzip, deflate) within a size limit.

Segment's server libraries (``segment-analytics-python`` with ``gzip=True``, and others) send
``Content-Encoding: gzip``. The webhook decodes the body *before* authenticating it: Segment
computes ``X-Signature`` over the uncompressed JSON, so the signature is checked against what
``decode_body`` returns, never against the compressed bytes.

Decompression streams in bounded steps (``decompressobj().decompress(data, max_length)``), so a
small compressed body that expands to gigabytes (a zip bomb) is refused once its output passes
``max_bytes``; it never holds more than ``max_bytes`` plus one step of output (``STEP_BYTES``)
and the output buffer's spare room (at most an eighth). A body that fits is copied once more
into the ``bytes`` returned.

Decisions:
- ``identity``, ``gzip``, ``x-gzip`` and ``deflate``, case-insensitive. ``deflate`` is meant to
  be zlib-wrapped (RFC 9110) but some clients send raw deflate: the zlib header tells them apart.
- Stacked codings (``gzip, deflate``: gzip applied first) are decoded last-applied first, at
  most ``MAX_CODINGS`` of them; each layer is held to ``max_bytes``.
- Concatenated gzip members are accepted (RFC 1952 defines a gzip file as a series of members,
  and Python's ``gzip.decompress`` reads them all), at most ``MAX_GZIP_MEMBERS`` of them; the
  limit applies to their total. Segment's clients send one: without a cap, a few kilobytes of
  empty members cost a second of CPU, each a decoder of its own.
- Anything after the end of the stream that is not another gzip member is refused.
"""

from __future__ import annotations

import zlib
from typing import Final

from segment_raindrop.core.segment_body import BodyError

# Output per decompression step: the most a bomb can allocate beyond ``max_bytes``.
STEP_BYTES: Final = 64 * 1024
# Non-identity codings one request may stack; real clients use one.
MAX_CODINGS: Final = 2
# Gzip members one body may hold; Segment's clients send one.
MAX_GZIP_MEMBERS: Final = 8

_GZIP_WBITS: Final = 16 + zlib.MAX_WBITS
_ZLIB_WBITS: Final = zlib.MAX_WBITS
_RAW_DEFLATE_WBITS: Final = -zlib.MAX_WBITS
_GZIP_MAGIC: Final = b"\x1f\x8b"
_SUPPORTED: Final = "identity, gzip, x-gzip or deflate"


class BodyTooLarge(Exception):
    """The decoded body is larger than allowed (answered with 413)."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(f"decoded body is larger than {max_bytes} bytes")
        self.max_bytes = max_bytes


class UnsupportedEncoding(Exception):
    """A ``Content-Encoding`` we do not decode, e.g. ``br`` (answered with 415)."""

    # Fixed phrases: the header's value is the caller's text, not ours to echo.
    def __init__(self, message: str = f"unsupported Content-Encoding: use {_SUPPORTED}") -> None:
        super().__init__(message)


# API Gateway hands a body over as text on an API without binary media types: compressed
# bytes do not survive that, so such a body is refused rather than read as garbage.
COMPRESSED_AS_TEXT: Final = (
    "this URL takes uncompressed bodies only; compressed ones go to the stack's "
    "SegmentLibraryHost (/v1/batch) or RaindropSdkEndpoint"
)


def decode_body(
    raw: bytes, content_encoding: str | None, *, max_bytes: int, intact: bool = True
) -> bytes:
    """``raw`` with every coding in ``content_encoding`` undone.

    ``intact``: the body arrived byte for byte (base64-encoded by API Gateway), not as text.

    Raises ``BodyTooLarge`` when the result (or any intermediate layer) exceeds ``max_bytes``,
    ``BodyError`` for a corrupt or truncated stream or trailing bytes, and
    ``UnsupportedEncoding`` for a coding other than identity, gzip, x-gzip and deflate, or any
    coding on a body that did not arrive intact.
    """
    codings = _codings(content_encoding)
    if codings and not intact:
        raise UnsupportedEncoding(COMPRESSED_AS_TEXT)
    if len(raw) > max_bytes and not codings:
        raise BodyTooLarge(max_bytes)
    body = raw
    for coding in reversed(codings):  # the last coding listed was applied last
        body = _gunzip(body, max_bytes) if coding == "gzip" else _inflate(body, max_bytes)
    return body


def _codings(header: str | None) -> list[str]:
    """The non-identity codings in the order they were applied, normalised."""
    codings = []
    for token in (header or "").split(","):
        coding = token.strip().lower()
        if coding in ("", "identity"):
            continue
        if coding == "x-gzip":
            coding = "gzip"
        if coding not in ("gzip", "deflate"):
            raise UnsupportedEncoding
        codings.append(coding)
    if len(codings) > MAX_CODINGS:
        raise UnsupportedEncoding
    return codings


def _gunzip(data: bytes, max_bytes: int) -> bytes:
    output = bytearray()
    start = 0
    for _ in range(MAX_GZIP_MEMBERS):
        if data[start : start + 2] != _GZIP_MAGIC:
            if not start:
                raise BodyError("body is not valid gzip data")
            raise BodyError("body has trailing bytes after the gzip data")
        start = _decompress(
            data, start, wbits=_GZIP_WBITS, output=output, max_bytes=max_bytes, name="gzip"
        )
        if start == len(data):
            return bytes(output)
        # Whatever follows a member may be the next member (RFC 1952 §2.2).
    raise BodyError(f"body has more than {MAX_GZIP_MEMBERS} gzip members")


def _inflate(data: bytes, max_bytes: int) -> bytes:
    output = bytearray()
    wbits = _ZLIB_WBITS if _has_zlib_header(data) else _RAW_DEFLATE_WBITS
    end = _decompress(data, 0, wbits=wbits, output=output, max_bytes=max_bytes, name="deflate")
    if end < len(data):
        raise BodyError("body has trailing bytes after the deflate data")
    return bytes(output)


def _has_zlib_header(data: bytes) -> bool:
    # RFC 1950: compression method 8 (deflate), a window of at most 32 KiB, and a header
    # checksum making the first two bytes a multiple of 31. Raw deflate never starts this way
    # in practice: it would take a non-final stored block with non-zero padding bits.
    if len(data) < 2:
        return False
    cmf, flg = data[0], data[1]
    return cmf & 0x0F == 8 and cmf >> 4 <= 7 and (cmf << 8 | flg) % 31 == 0


def _decompress(
    data: bytes, start: int, *, wbits: int, output: bytearray, max_bytes: int, name: str
) -> int:
    """Decode the stream at ``data[start:]`` onto ``output``; returns where the stream ended.

    Input goes in slices and output comes out in steps, both of ``STEP_BYTES``, so neither the
    output nor zlib's copy of the unread input (``unconsumed_tail``) grows past one step.
    """
    decoder = zlib.decompressobj(wbits)
    view = memoryview(data)
    offset = start
    pending: bytes | memoryview = b""
    try:
        while not decoder.eof:
            if not pending and offset < len(data):
                pending = view[offset : offset + STEP_BYTES]
                offset += len(pending)
            # One byte past the limit tells "exactly max_bytes" from "more".
            chunk = decoder.decompress(pending, min(STEP_BYTES, max_bytes - len(output) + 1))
            pending = decoder.unconsumed_tail
            output += chunk
            if len(output) > max_bytes:
                raise BodyTooLarge(max_bytes)
            if not (chunk or pending or decoder.eof) and offset >= len(data):
                # Every byte read, nothing more coming out, and no end of stream.
                raise BodyError(f"body is truncated {name} data")
    except zlib.error:
        raise BodyError(f"body is not valid {name} data") from None
    return offset - len(decoder.unused_data)
