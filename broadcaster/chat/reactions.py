"""Reactions leave a node summed: per room, once per tick, one atomic HINCRBY-and-publish.

Viewers' reactions are counted per room as they come (``incoming.py``); this
loop sends each room's counts to the bus (``Bus.add_reactions``), which adds
them to the broadcast's totals and publishes the delta with the totals to every
node.  Counts the bus could not take are kept for the next round: nothing is
lost while Redis restarts.
"""

from __future__ import annotations

import asyncio

from broadcaster.bus import BusUnavailable, ChatState
from broadcaster.chat.host import HostActions
from broadcaster.chat.rooms import RoomSync


async def send_reactions(bus: ChatState, rooms: RoomSync, node_id: str, tick: float,
                         host: HostActions | None = None) -> None:
    """The reaction loop (one task per node); what the bus took goes to ``host``'s recorder too."""
    while True:
        await rooms.wait_for_rooms()
        await asyncio.sleep(max(tick, 0.1))
        for room in list(rooms.rooms.values()):
            if not room.local_reactions:
                continue
            counts, room.local_reactions = room.local_reactions, {}
            try:
                await bus.add_reactions(room.broadcast_id, room.channel, counts, node_id)
                if host is not None and host.recorder is not None:
                    await host.recorder.reactions(room.broadcast_id, counts)
            except BusUnavailable:
                # Keep them for the next tick: nothing lost while Redis restarts.
                for kind, n in counts.items():
                    room.local_reactions[kind] = room.local_reactions.get(kind, 0) + n
