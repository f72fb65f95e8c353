"""What a node holds per broadcast with local viewers: its ``Room`` and each ``Viewer`` (one socket).

A room's viewers are spread over ``GROUPS`` groups the fan-out writes in turn
(``fanout.py``); its event list holds the framed events some group has not
been sent yet.  ``rooms.py`` keeps a room in sync with the bus.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from broadcaster.chat.ratelimit import Limit, TokenBucket

#: groups a room's viewers are spread over: a tick writes the groups g ≡ tick (mod every)
GROUPS = 60


def channel_of(broadcast_id: str) -> str:
    # The hash tag keeps the channel on the same cluster slot as the keys.
    return f"{{{broadcast_id}}}"


@dataclass(eq=False, slots=True)
class Viewer:
    """One connected socket, after its hello."""
    ws: web.WebSocketResponse
    transport: asyncio.Transport
    broadcast_id: str
    viewer_id: str
    name: str
    comments: Limit
    reactions: Limit
    abuse: TokenBucket
    #: "viewer", or the verified "host"/"moderator" of a console token
    role: str = "viewer"
    #: the keyed hash of the socket's network address (quotas.address_key), for address bans
    address: str = ""
    closed: bool = False
    close_handle: asyncio.TimerHandle | None = None
    #: the room's group (of GROUPS) this viewer is written with
    group: int = 0
    #: the socket's fd when batches may be sent on it directly (sendmany.direct_fd), else -1
    fd: int = -1

    def author(self) -> dict[str, str]:
        return {"id": self.viewer_id, "name": self.name, "role": self.role}


@dataclass(eq=False)
class Room:
    broadcast_id: str
    channel: str
    viewers: set[Viewer] = field(default_factory=set)
    #: the viewers by group, in the order they joined (a dict as an ordered set): a batch is
    #: written in that order, which in a join storm is the order of the sockets' kernel objects
    groups: list[dict[Viewer, None]] = field(default_factory=lambda: [{} for _ in range(GROUPS)])
    #: framed events some group has not been sent yet; ``events[0]`` is event number ``events_base``
    events: list[bytes] = field(default_factory=list)
    events_base: int = 0
    #: per group: the number of the next event to send it, and the seq of the last comment sent
    cursors: list[int] = field(default_factory=lambda: [0] * GROUPS)
    sent_seq: list[int] = field(default_factory=lambda: [0] * GROUPS)
    #: (seq, comment id, frame) of recent comments, for joiners racing a tick
    recent: deque[tuple[int, str, bytes]] = field(default_factory=lambda: deque(maxlen=256))
    seen_seq: int = 0
    #: the group joiners go to, and how many have since it was chosen
    run_group: int = -1
    run_length: int = 0
    reaction_delta: dict[str, int] = field(default_factory=dict)
    reaction_totals: dict[str, int] = field(default_factory=dict)
    local_reactions: dict[str, int] = field(default_factory=dict)
    viewer_total: int = 0
    viewers_changed: bool = False
    pinned: dict[str, Any] | None = None
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None
    empty_since: float | None = None

