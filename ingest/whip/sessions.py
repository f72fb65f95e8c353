"""The WHIP sessions of one node and their peer connections: lookup, counts, shutdown."""

from __future__ import annotations

import asyncio

from ingest.whip.session import PeerConnections, WhipSession


class WhipSessions:
    def __init__(self) -> None:
        self.peers = PeerConnections()
        self._sessions: dict[str, WhipSession] = {}

    @property
    def count(self) -> int:
        """Sessions being set up or live."""
        return len(self._sessions)

    @property
    def peer_connections(self) -> int:
        """RTCPeerConnections created and not yet closed (0 when nothing is live)."""
        return self.peers.count

    @property
    def peer_connections_created(self) -> int:
        """RTCPeerConnections created since start (a refused offer must not add one)."""
        return self.peers.created

    def add(self, session: WhipSession) -> None:
        self._sessions[session.id] = session

    def get(self, session_id: str) -> WhipSession | None:
        return self._sessions.get(session_id)

    def forget(self, session: WhipSession) -> None:
        self._sessions.pop(session.id, None)

    def for_broadcast(self, broadcast_id: str) -> list[WhipSession]:
        return [s for s in self._sessions.values() if s.broadcast_id == broadcast_id]

    async def close_all(self, reason: str) -> None:
        sessions = list(self._sessions.values())
        for session in sessions:
            session.end(reason)
        # sessions still negotiating are discarded by their own request handler
        await asyncio.gather(*(s.wait_closed() for s in sessions if s.active))
