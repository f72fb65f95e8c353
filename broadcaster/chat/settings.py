"""The chat relay's settings: the fan-out's pace and bounds, per-viewer limits, timers."""

from __future__ import annotations

from dataclasses import dataclass

from broadcaster.chat.quotas import AddressLimits


@dataclass(frozen=True)
class ChatSettings:
    #: how often the fan-out writes: each tick writes the viewers whose batch is due
    tick: float = 0.025
    #: the shortest time between two batches to one viewer (events are coalesced
    #: meanwhile): one send per viewer per interval is the fan-out's cost
    interval: float = 0.05
    #: rooms with at least this many local viewers use ``large_interval``: half
    #: the writes where writes are the cost
    large_room: int = 1000
    large_interval: float = 0.1
    #: socket writes per second one room's fan-out may cost (0: no cap); a room too
    #: large for its interval gets a longer one.  Each write is a send syscall, about 8-10 µs
    #: of CPU all told on the 2-core benchmark machine (loopback, where the receiving side
    #: is charged to the sender too).  At the defaults, 10,000 viewers get a batch every
    #: 200 ms (50,000 writes/s, 0.41-0.47 core there; a comment's p99 about 205 ms).
    room_write_rate: float = 52_000.0
    #: sockets written per slice of a tick before the loop yields to other work: a
    #: comment's way to the screen (read, Redis round trips, bus message) waits
    #: for at most one slice per step, not for a whole tick's writes
    write_slice: int = 250
    #: send batches to plain TCP sockets with nothing queued on their transport from one
    #: C pass (``broadcaster/chat/_sendmany.c``) instead of one ``transport.write`` each;
    #: False, or the extension not built: every write goes through the transport
    direct_send: bool = True
    #: viewers that join one after the other and go to the same group (then the next run
    #: goes to the smallest group): their sockets' kernel objects were allocated together,
    #: and a batch written to neighbours touches less memory: 7.7 instead of 10.2 µs of CPU
    #: per write on loopback (``python -m benchmarks.fanout_write --order runs|strided``)
    join_run: int = 32
    #: WebSocket ping interval (aiohttp closes a socket that does not answer)
    heartbeat: float | None = 30.0
    #: comments in history / on join
    history_limit: int = 50
    #: a viewer whose server-side send buffer would pass this is closed (4000)
    send_buffer_limit: int = 1 << 20
    #: kernel send buffer per viewer socket (bounds the memory outside Python too)
    socket_sndbuf: int = 64 * 1024
    #: per identity (all its sockets on this node, across reconnects)
    comment_rate: float = 3.0
    comment_burst: float = 10.0
    react_rate: float = 20.0
    react_burst: float = 60.0
    #: rate-limit errors a client may cause (refilling at 2/s) before 1008
    abuse_burst: float = 20.0
    #: per network address on this node (``quotas.py``); None: from the node's configuration
    address_limits: AddressLimits | None = None
    presence_interval: float = 1.0
    presence_ttl: float = 5.0
    hello_timeout: float = 10.0
    #: seconds a room without viewers stays subscribed
    room_linger: float = 5.0
    redis_prefix: str = "onair:chat:"
