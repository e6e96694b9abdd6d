"""One upload in a process of its own, so that its peak RSS is its own (target 4).

    python upload_child.py probe URL SIZE   # pytest-rehearsal's upload probe
    python upload_child.py httpx URL SIZE   # httpx alone, streaming the same body

Prints one JSON line: the status (null when none came), the error, and the seconds until
the answer or the failure.
"""

from __future__ import annotations

import json
import sys
import time
import uuid
from collections.abc import Iterator

from pytest_rehearsal.checks._base import Probe, Upload
from pytest_rehearsal.upload_probe import CHUNK_SIZE, multipart_framing, send_upload

#: httpx's write timeout in the comparison: it blocks on a full socket buffer until then.
HTTPX_WRITE_TIMEOUT = 1.0


def with_probe(url: str, size: int) -> tuple[int | None, str | None]:
    """What pytest-rehearsal's uploads check sends for a body of *size* bytes."""
    probe = Probe("POST", "/upload", upload=Upload("file", size), idempotent=False)
    reply = send_upload(url, probe, {}, timeout=30.0, ssl_context=None)
    return reply.status, reply.error


def with_httpx(url: str, size: int) -> tuple[int | None, str | None]:
    """The same multipart body streamed by httpx, with a write timeout of one second."""
    import httpx

    boundary = f"bench-{uuid.uuid4().hex}"
    preamble, zeros, epilogue = multipart_framing(Upload("file", size), boundary)

    def body() -> Iterator[bytes]:
        yield preamble
        chunk = bytes(CHUNK_SIZE)
        left = zeros
        while left > 0:
            yield chunk[: min(left, CHUNK_SIZE)]
            left -= CHUNK_SIZE
        yield epilogue

    headers = {
        "Content-Type": f"multipart/form-data; boundary={boundary}",
        "Content-Length": str(size),
    }
    timeout = httpx.Timeout(30.0, write=HTTPX_WRITE_TIMEOUT)
    try:
        with httpx.Client(timeout=timeout) as client:
            return client.post(url, content=body(), headers=headers).status_code, None
    except httpx.HTTPError as exc:
        return None, f"{type(exc).__name__}: {exc}"


def main(argv: list[str]) -> int:
    """Send one upload as asked on the command line; print what came of it as JSON."""
    how, url, size = argv[0], argv[1], int(argv[2])
    started = time.perf_counter()
    status, error = (with_probe if how == "probe" else with_httpx)(url, size)
    seconds = time.perf_counter() - started
    print(json.dumps({"status": status, "error": error, "seconds": seconds}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
