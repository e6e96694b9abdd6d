"""Response bodies read within a memory bound, however they were encoded.

Bodies are read with a cap, asking for ``identity`` encoding; a gzip or deflate body sent
anyway is inflated in pieces of at most :data:`INFLATE_PIECE` bytes, so a 51 KB gzip bomb
never becomes a 50 MiB allocation.

Imported only when a rehearsal is active (it imports httpx).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Iterator

import httpx

__all__ = ["INFLATABLE", "INFLATE_PIECE", "content_encoding", "inflate", "read_capped"]

#: Inflated bodies come out in pieces no larger than this, however well they compress.
INFLATE_PIECE = 64 * 1024
#: The encodings inflated here; any other is left as it came.
INFLATABLE = frozenset({"gzip", "x-gzip", "deflate"})


def inflate(chunks: Iterable[bytes], piece: int = INFLATE_PIECE) -> Iterator[bytes]:
    """Decode a gzip or zlib stream, yielding pieces of at most *piece* bytes.

    The output is produced only as it is pulled, so a consumer that stops at a cap never
    holds more than the cap plus one piece, however small the compressed input was.
    Raises :class:`httpx.DecodingError` on a corrupt stream.
    """
    decoder = zlib.decompressobj(32 + zlib.MAX_WBITS)  # 32: accept a gzip or a zlib header
    try:
        for chunk in chunks:
            data = chunk
            while True:
                out = decoder.decompress(data, piece)
                if out:
                    yield out
                data = decoder.unconsumed_tail
                # A full piece may leave output inside zlib even with no input left.
                if decoder.eof or (not data and len(out) < piece):
                    break
            if decoder.eof:
                return
        tail = decoder.flush()
    except zlib.error as exc:
        raise httpx.DecodingError(f"corrupt compressed body: {exc}") from None
    if tail:
        yield tail


def content_encoding(headers: httpx.Headers) -> str:
    return str(headers.get("content-encoding", "")).strip().lower()


def read_capped(response: httpx.Response, limit: int) -> tuple[bytes, bool]:
    """At most *limit* bytes of the body (gzip/deflate inflated), and whether there was more.

    Other encodings (``br``, ``zstd``) are returned undecoded: the rehearsal asked for
    ``identity``. Time is bounded by the request's deadline, not here.
    """
    encoding = content_encoding(response.headers)
    raw = response.iter_raw()
    chunks = inflate(raw) if encoding in INFLATABLE else raw
    body = bytearray()
    for chunk in chunks:
        body += chunk
        if len(body) > limit:
            return bytes(body[:limit]), True
    return bytes(body), False
