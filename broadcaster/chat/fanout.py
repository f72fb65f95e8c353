"""The fan-out: every ``tick``, each due group of each room gets the events it has not had yet.

Events are not written as they arrive: they are framed (each once) into the
room's event list, and every ``tick`` the events a viewer has not had yet are
joined into one byte string and written to its socket's transport.  Writes are
the cost at scale (one send per socket, mostly kernel time): a viewer gets one
batch per ``interval`` (a longer one in a large room, and as long as
``room_write_rate`` requires), and a room's viewers are spread over ``GROUPS``
groups written in turn, a share of them per ``tick``, so no tick writes a whole
room and a comment waits for its viewers' next turn, not for a whole room's
writes.

``FanOut.write`` is the one write path, for a tick's batches and for a single
viewer's bytes alike: the C pass (``sendmany.send_batch``) sends on every
socket whose transport holds nothing; the rest go through their transports,
and a socket whose transport write buffer would pass ``send_buffer_limit`` is
closed with 4000 instead of growing.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable

from broadcaster.chat import protocol as proto
from broadcaster.chat.metrics import ChatMetrics
from broadcaster.chat.room import GROUPS, Room, Viewer
from broadcaster.chat.rooms import RoomSync
from broadcaster.chat.sendmany import SendBatch, send_batch
from broadcaster.chat.settings import ChatSettings

log = logging.getLogger("onair.chat")


class FanOut:
    def __init__(self, settings: ChatSettings, metrics: ChatMetrics, rooms: RoomSync,
                 leave: Callable[[Viewer], None], c_pass: bool = True) -> None:
        self.settings = settings
        self.metrics = metrics
        self._sync = rooms
        self.rooms = rooms.rooms
        self._leave = leave
        #: the C pass; None: every write goes through the transports (the extension is not built)
        self._send: SendBatch | None = send_batch if c_pass else None

    # --- what a tick writes --------------------------------------------------------
    def every(self, viewers: int) -> int:
        """Ticks between two batches to one viewer of a room of ``viewers`` local viewers."""
        s = self.settings
        interval = s.large_interval if viewers >= s.large_room else s.interval
        # (a hair under, so 0.1 / 0.025 is 4 ticks, not 5)
        by_interval = math.ceil(interval / s.tick - 1e-9)
        by_rate = math.ceil(viewers / (s.room_write_rate * s.tick)) if s.room_write_rate > 0 else 1
        return max(1, min(GROUPS, max(by_interval, by_rate)))

    def collect(self, tick_no: int = 0) -> list[tuple[Room, bytes, list[Viewer]]]:
        """One fan-out tick's work: per room, the events each due group has not
        had yet (framed once, joined into one batch) and the viewers it goes to
        (a snapshot: a viewer that joins after this point got these events in
        its history).  Each group is due every ``every`` ticks, in turn."""
        work = []
        for room in self.rooms.values():
            every = self.every(len(room.viewers))
            # Groups g with g ≡ tick_no (mod every): each group every `every` ticks (a divisor of GROUPS).
            due = range(tick_no % every, GROUPS, every)
            # Counts once per round of groups, not once per tick: the same bytes as one flush per round.
            aggregate = tick_no % every == 0
            if aggregate and room.reaction_delta:
                room.events.append(proto.text_frame(proto.event("reactions", counts=room.reaction_delta,
                                                                totals=room.reaction_totals)))
                room.reaction_delta = {}
            if aggregate and room.viewers_changed:
                room.events.append(proto.text_frame(proto.event("viewers", count=room.viewer_total)))
                room.viewers_changed = False
            base = room.events_base
            end = base + len(room.events)
            if not room.events:
                continue  # every group has had everything (the list keeps what some group has not)
            # Groups at the same point get one batch between them (all of them, in a small room).
            batches: dict[int, tuple[bytes, list[Viewer]]] = {}
            for g in due:
                start = room.cursors[g]
                room.cursors[g] = end
                room.sent_seq[g] = room.seen_seq
                if start == end or not room.groups[g]:
                    continue
                same = batches.get(start)
                if same is None:
                    batches[start] = (b"".join(room.events[start - base:]), list(room.groups[g]))
                else:
                    same[1].extend(room.groups[g])
            oldest = min(room.cursors)
            if oldest > base:
                del room.events[:oldest - base]
                room.events_base = oldest
            for batch, viewers in batches.values():
                self.metrics.batches.inc()
                work.append((room, batch, viewers))
        return work

    def flush(self, tick_no: int = 0) -> None:
        """One whole tick at once (tests and small nodes)."""
        for _room, batch, viewers in self.collect(tick_no):
            self.write(viewers, batch)

    async def run(self) -> None:
        """The tick loop (one task per node)."""
        loop = asyncio.get_running_loop()
        tick = self.settings.tick
        chunk = max(1, self.settings.write_slice)
        tick_no = 0
        deadline = loop.time()
        while True:
            if await self._sync.wait_for_rooms():
                deadline = loop.time()
            deadline += tick
            await asyncio.sleep(max(0.0, deadline - loop.time()))
            if loop.time() - deadline > tick:
                deadline = loop.time()  # fell behind: don't try to catch up in a burst
            tick_no += 1
            started = loop.time()
            try:
                work = self.collect(tick_no)
                for _room, batch, viewers in work:
                    # Thousands of writes (a syscall each) in slices, yielding in
                    # between, so Redis replies and incoming comments are not held
                    # up behind one long write loop.  Batch order per socket holds:
                    # the next tick starts after this one is written.
                    for i in range(0, len(viewers), chunk):
                        self.write(viewers[i:i + chunk], batch)
                        if i + chunk < len(viewers):
                            await asyncio.sleep(0)
                if work:
                    self.metrics.flush_seconds.observe(loop.time() - started)
            except Exception:
                log.exception("chat tick failed")

    # --- the write path --------------------------------------------------------------
    def write(self, viewers: list[Viewer], data: bytes) -> None:
        """Write ``data`` to each viewer's socket, or drop the viewers too slow to take it.

        The hot loop at scale (10,000 sockets per tick).  With the C pass, every
        viewer whose transport holds nothing gets the bytes straight on its
        socket; the rest come back with what their transports hold and are
        written through them here (queued bytes go first) or dropped when too
        slow.  A viewer whose transport is closing leaves its room."""
        send = self._send
        if send is not None:
            gone, queued, short = send(viewers, data)
            for viewer, sent in short:
                # The socket took less than all (its kernel buffer is full, or the connection
                # failed): its transport queues the rest, or meets the error and closes.
                viewer.transport.write(data[sent:] if sent else data)
        else:
            gone, queued = [], []
            for viewer in viewers:
                transport = viewer.transport
                if viewer.closed or transport.is_closing():
                    gone.append(viewer)
                else:
                    queued.append((viewer, transport.get_write_buffer_size()))
        limit = self.settings.send_buffer_limit - len(data)
        top = 0
        slow: list[tuple[Viewer, int]] = []
        for viewer, buffered in queued:
            if buffered > limit:
                slow.append((viewer, buffered))
                continue
            viewer.transport.write(data)
            if buffered > top:
                top = buffered
        self.metrics.note_buffer(len(data) + top)
        for viewer in gone:
            if not viewer.closed:  # (a closed viewer has left already; its abort timer stays)
                viewer.closed = True
                self._leave(viewer)
        for viewer, buffered in slow:
            if not viewer.closed:
                self._drop_slow(viewer, buffered)

    def send(self, viewer: Viewer, payload: bytes) -> None:
        """One payload (a text frame's) to one viewer."""
        self.write([viewer], proto.text_frame(payload))

    def _drop_slow(self, viewer: Viewer, buffered: int) -> None:
        self.metrics.slow_dropped.inc()
        log.info("viewer %s of %s dropped: send buffer %d bytes (bound %d)", viewer.viewer_id,
                 viewer.broadcast_id, buffered, self.settings.send_buffer_limit)
        self.drop(viewer, proto.CLOSE_SLOW_CONSUMER, "too slow")

    def drop(self, viewer: Viewer, code: int, reason: str, last: bytes = b"") -> None:
        """Close the viewer's socket from here: ``last`` (a payload) and the close frame go out
        behind what is buffered; if the peer still does not read, the connection is aborted
        after 2 s, which frees the buffer."""
        viewer.closed = True
        self._leave(viewer)
        viewer.transport.write((proto.text_frame(last) if last else b"") + proto.close_frame(code, reason))
        viewer.close_handle = asyncio.get_running_loop().call_later(2.0, viewer.transport.abort)
