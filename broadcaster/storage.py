"""How the node opens Redis: one client over one connection pool, shared by every part.

With ``--redis-url`` the node's storage is one Redis: the broadcast registry,
the leases, the chat bus (pub/sub and chat state) and the moderation store all
take the client ``open_redis`` gives (``app[REDIS]``, opened first and closed
last by ``app._storage``), so the node holds one pool, sized here, instead of
one per part.  Without it each part has its embedded backend (SQLite files in
the data dir, the in-process bus).
"""

from __future__ import annotations

from redis.asyncio import BlockingConnectionPool, Redis

#: connections the node may hold (the bus' subscriber holds one for good); a burst beyond it
#: (a join storm) waits up to ``timeout`` for a connection instead of failing
MAX_CONNECTIONS = 128


def open_redis(url: str, max_connections: int = MAX_CONNECTIONS) -> Redis:
    """The node's Redis client (connections are made on first use)."""
    if not url.startswith(("redis://", "rediss://", "unix://")):
        raise ValueError(f"unsupported Redis URL scheme: {url.split(':', 1)[0]!r}")
    pool = BlockingConnectionPool.from_url(url, max_connections=max_connections, timeout=5,
                                           socket_connect_timeout=2, socket_timeout=5, socket_keepalive=True,
                                           health_check_interval=5)
    return Redis(connection_pool=pool)


def text(reply: bytes | str) -> str:
    """A Redis reply as text: the client gives bytes (it does not decode responses); redis-py's types
    say ``bytes | str`` for both settings."""
    return reply.decode() if isinstance(reply, bytes) else reply
