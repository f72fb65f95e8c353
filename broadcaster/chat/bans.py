"""Bans that hold: checked when a viewer joins, enforced on its open sockets on every
node, and extendable to the viewer's network address.

- at a join, the bus checks the identity's ban and its address's and
  remembers the address key (``quotas.address_key``, a keyed hash: the
  address itself is never stored) in the same round trip as the history read
  (``Bus.admit_with_history``); ``refusal`` says whether that refuses the
  viewer (``Refused``: error ``banned``, close 4003).  A timed-out viewer may
  still read.
- ``ban``: keeps the ban's one record in the bus (``moderation.bans.BanRecord``:
  who, why, until when, and the address key the viewer last joined from when
  the host asks for it: the address is then banned as long as the viewer)
  and, for a ban, publishes ``viewer_banned`` on the broadcast's channel;
  every node with viewers of the broadcast closes that identity's sockets
  (``enforce``), and with an address ban every socket from the address.  A
  timeout closes nothing: the post's own ban check refuses the viewer's comments.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from broadcaster.bus import Admission, Bus
from broadcaster.chat import protocol as proto
from moderation.bans import BanRecord

if TYPE_CHECKING:
    from broadcaster.chat.room import Room, Viewer

log = logging.getLogger("onair.chat.bans")

#: bus message (between nodes, never forwarded to viewers): close these sockets
BANNED_EVENT = "viewer_banned"


class Refused(Exception):
    """The joining viewer (or its network address) is banned; the message is for the viewer."""


class AddressUnknown(LookupError):
    """No network address is known for the viewer (it has not joined within the chat retention)."""


class ChatBans:
    def __init__(self, bus: Bus, channel_of: Callable[[str], str]) -> None:
        self.bus = bus
        self._channel_of = channel_of

    @staticmethod
    def refusal(admission: Admission) -> str | None:
        """Why the viewer may not join (a message for it), or None."""
        if admission.ban == "ban":
            return "you are banned from this chat"
        if admission.address_banned:
            return "your network address is banned from this chat"
        return None

    async def ban(self, record: BanRecord, address: bool = False) -> BanRecord:
        """Keep the ban or timeout; with ``address``, over the viewer's address too: the record as kept."""
        bus, bid, viewer_id = self.bus, record.broadcast_id, record.viewer_id
        key = await bus.address_of(bid, viewer_id) if address else None
        if address and not key:
            raise AddressUnknown(f"no network address is known for viewer {viewer_id[:64]!r} "
                                 "(it has not joined this chat recently)")
        record = record.with_address(key)
        await bus.ban(record)
        if record.until is None:
            await bus.publish(self._channel_of(bid), proto.event(BANNED_EVENT, viewer=viewer_id, address=key))
        return record

    @staticmethod
    def enforce(room: "Room", doc: dict[str, Any], drop: Callable[["Viewer", int, str, bytes], None]) -> None:
        """Close this node's sockets a ban (from any node) covers, with ``drop`` (``FanOut.drop``:
        a socket closed with a code, a reason and a last payload)."""
        viewer_id, address = doc.get("viewer"), doc.get("address")
        gone = [v for v in room.viewers if v.viewer_id == viewer_id or (address and v.address == address)]
        for viewer in gone:
            log.info("viewer %s of %s closed: banned", viewer.viewer_id, room.broadcast_id)
            drop(viewer, proto.CLOSE_BANNED, "banned",
                       proto.error_event("banned", "you are banned from this chat"))
