"""TCP connections whose name resolution is bounded in time as well.

``socket.create_connection`` bounds the connect, but it first calls ``getaddrinfo``, which
has no timeout: with a broken resolver a rehearsal would wait for the system's resolver
timeouts (5 s per attempt, several attempts) past every deadline. Here an IP address is
taken as it is, and a name is resolved on a daemon thread that the caller waits for only
as long as the timeout allows; a lookup that outlives it is abandoned, never joined.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Sequence
from typing import Any

__all__ = ["open_connection", "resolve"]

#: One entry of ``getaddrinfo``: family, kind, protocol, canonical name, socket address.
_AddressInfo = tuple[socket.AddressFamily, socket.SocketKind, int, str, Any]


def resolve(host: str, port: int, timeout: float | None) -> Sequence[_AddressInfo]:
    """``getaddrinfo`` for a TCP connection to *host*, raising TimeoutError after *timeout*."""
    try:
        # An IP address needs no lookup, and no thread.
        return socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST)
    except socket.gaierror:
        pass
    outcome: list[Sequence[_AddressInfo] | OSError] = []

    def look_up() -> None:
        try:
            outcome.append(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))
        except OSError as exc:
            outcome.append(exc)

    worker = threading.Thread(target=look_up, name=f"rehearsal-resolve-{host}", daemon=True)
    worker.start()
    worker.join(timeout)
    if not outcome:
        raise TimeoutError(f"resolving {host} took longer than {timeout:g}s")
    found = outcome[0]
    if isinstance(found, OSError):
        raise found
    return found


def open_connection(
    host: str,
    port: int,
    timeout: float | None,
    source_address: tuple[str, int] | None = None,
) -> socket.socket:
    """Like ``socket.create_connection``, with the name lookup inside *timeout* too.

    Each address is tried in turn with the time that is left; the first error is raised
    when none connects.
    """
    started = time.monotonic()
    addresses = resolve(host, port, timeout)
    errors: list[OSError] = []
    for family, kind, proto, _, address in addresses:
        left = None if timeout is None else timeout - (time.monotonic() - started)
        if left is not None and left <= 0:
            raise TimeoutError(f"connecting to {host} took longer than {timeout:g}s")
        sock = socket.socket(family, kind, proto)
        try:
            sock.settimeout(left)
            if source_address is not None:
                sock.bind(source_address)
            sock.connect(address)
        except OSError as exc:
            sock.close()
            errors.append(exc)
            continue
        return sock
    raise errors[0] if errors else OSError(f"no address found for {host}")
