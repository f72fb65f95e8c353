"""The fan-out's write pass in C, and which sockets it may write to.

``send_batch`` is ``broadcaster.chat._sendmany.send_batch`` (see _sendmany.c for
what it does and why): one call checks every viewer of a batch and sends the
batch with one ``send(2)`` per socket, the GIL released.  Without the extension
(a node installed without a C compiler) ``send_batch`` is None and the relay
writes through each transport: the same behaviour, a dearer write.
``direct_fd`` says which transports may be written around: a plain TCP socket,
never TLS (bytes sent on the socket would skip the encryption) or anything that
is not a socket.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any, Callable

#: send_batch(viewers, data) -> (gone, [(viewer, bytes queued)], [(viewer, bytes sent)])
SendBatch = Callable[[list[Any], bytes], "tuple[list[Any], list[tuple[Any, int]], list[tuple[Any, int]]]"]

try:
    from broadcaster.chat._sendmany import send_batch as _send_batch
except ImportError:  # built without a C compiler: transports write, as they would anyway
    _send_batch = None

send_batch: SendBatch | None = _send_batch


def direct_fd(transport: asyncio.BaseTransport) -> int:
    """The fd of ``transport``'s TCP socket if bytes may be sent on it directly, else -1."""
    if send_batch is None:
        return -1
    if transport.get_extra_info("sslcontext") is not None or transport.get_extra_info("ssl_object") is not None:
        return -1
    sock = transport.get_extra_info("socket")
    if sock is None or sock.type != socket.SOCK_STREAM or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return -1
    fd: int = sock.fileno()
    return fd if fd >= 0 else -1
