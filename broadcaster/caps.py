"""Per-node and per-address caps on what clients hold open: RTMP connections, HTTP requests in
flight, WebSocket connections and held LL-HLS requests.

One :class:`Slots` per kind counts what is held, in total and per network address (IPv4
address, IPv6 /64: :func:`broadcaster.chat.quotas.network_of`, the unit the chat quotas
count).  ``enter`` answers None (admitted: ``leave`` once it ends) or a refusal code,
``node_limit`` or ``address_limit``; it does no I/O and keeps no clock, so the callers own
the answer:

- RTMP: the server closes a refused connection as soon as it is accepted
  (``ingest/rtmp/server.py``; the ``Admission`` protocol of ``ingest/rtmp/limits.py``);
- HTTP and WebSocket: :func:`caps_middleware` answers a refused request 503 with
  ``Retry-After`` and a JSON error (CORS kept, so a page can read it).  A WebSocket counts
  as ``ws`` for its whole life instead of ``http``; its per-address cap is the chat's
  (``--chat-sockets-per-address``, ``broadcaster/chat/quotas.py``);
- held LL-HLS requests: ``broadcaster/origin_blocking.py`` takes a ``hls_held`` slot before
  a request starts waiting, and answers 503 + ``Retry-After`` past the caps.

Behind a reverse proxy every client comes from the proxy's address: with ``--trusted-proxies``, a request
from a listed proxy counts under the client its ``X-Forwarded-For`` names (:func:`client_address`), and the
middleware hands the rest of the chain a request whose ``remote`` is that client (chat quotas and bans
included).  A request from anyone else keeps its peer address whatever headers it sends.

Every refusal is counted in ``onair_connections_refused_total{kind,reason}``; what is held,
in the gauge ``onair_connections_open{kind}``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge

from broadcaster.chat.quotas import network_of
from broadcaster.config import NodeConfig, parse_networks
from ingest.rtmp.limits import RtmpLimits

NODE_LIMIT = "node_limit"
ADDRESS_LIMIT = "address_limit"
#: seconds a refused HTTP client is told to wait
RETRY_AFTER = 1


class Slots:
    """What one kind of client holds, per node and per network address; 0 turns a cap off."""

    __slots__ = ("kind", "per_node", "per_address", "held", "_by_network", "_refused")

    def __init__(self, kind: str, per_node: int, per_address: int,
                 refused: Callable[[str, str], None] | None = None) -> None:
        self.kind = kind
        self.per_node = per_node
        self.per_address = per_address
        self.held = 0
        self._by_network: dict[str, int] = {}
        self._refused = refused

    @property
    def addresses(self) -> int:
        """Networks holding at least one slot (state is kept for those only)."""
        return len(self._by_network)

    def count(self) -> float:
        """What is held now (the ``onair_connections_open`` gauge reads it)."""
        return float(self.held)

    def held_by(self, address: str) -> int:
        return self._by_network.get(network_of(address), 0)

    def enter(self, address: str) -> str | None:
        network = network_of(address)
        count = self._by_network.get(network, 0)
        reason: str
        if self.per_address and count >= self.per_address:
            reason = ADDRESS_LIMIT
        elif self.per_node and self.held >= self.per_node:
            reason = NODE_LIMIT
        else:
            self._by_network[network] = count + 1
            self.held += 1
            return None
        if self._refused is not None:
            self._refused(self.kind, reason)
        return reason

    def leave(self, address: str) -> None:
        network = network_of(address)
        count = self._by_network.get(network, 0) - 1
        if count < 0:
            raise RuntimeError(f"{self.kind}: leave() without enter() for {network}")
        if count:
            self._by_network[network] = count
        else:
            del self._by_network[network]
        self.held -= 1

    def explain(self, reason: str) -> str:
        """The message a refused client reads."""
        what = {"http": "requests in progress", "ws": "WebSocket connections", "rtmp": "RTMP connections",
                "hls_held": "held LL-HLS requests"}.get(self.kind, self.kind)
        if reason == ADDRESS_LIMIT:
            return f"too many {what} from your network address (at most {self.per_address}); retry later"
        return f"this node has too many {what} (at most {self.per_node}); retry later"


@dataclass(frozen=True)
class CapLimits:
    """The node options' caps (0: no cap); their defaults are the options' (``broadcaster/config.py``)."""

    rtmp_per_node: int
    rtmp_per_address: int
    http_per_node: int
    http_per_address: int
    ws_per_node: int
    hls_held_per_node: int
    hls_held_per_address: int


class NodeCaps:
    """The node's slots of each kind and their metrics."""

    def __init__(self, limits: CapLimits, registry: CollectorRegistry,
                 trusted: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()) -> None:
        self.limits = limits
        #: reverse proxies whose X-Forwarded-For is believed
        self.trusted = trusted
        self._refusals = Counter("onair_connections_refused",
                                 "Connections and requests refused by a per-node or per-address cap, by kind "
                                 "(rtmp, http, ws, hls_held) and reason (node_limit, address_limit)",
                                 ["kind", "reason"], registry=registry)
        refused = self._refused
        self.rtmp = Slots("rtmp", limits.rtmp_per_node, limits.rtmp_per_address, refused)
        self.http = Slots("http", limits.http_per_node, limits.http_per_address, refused)
        # per address: the chat's socket quota (broadcaster/chat/quotas.py)
        self.ws = Slots("ws", limits.ws_per_node, 0, refused)
        self.hls_held = Slots("hls_held", limits.hls_held_per_node, limits.hls_held_per_address, refused)
        gauge = Gauge("onair_connections_open", "What clients hold open on this node, by kind: RTMP connections, "
                      "HTTP requests in progress, WebSocket connections, held LL-HLS requests",
                      ["kind"], registry=registry)
        for slots in (self.rtmp, self.http, self.ws, self.hls_held):
            gauge.labels(slots.kind).set_function(slots.count)

    def _refused(self, kind: str, reason: str) -> None:
        self._refusals.labels(kind, reason).inc()


CAPS = web.AppKey("caps", NodeCaps)


def node_caps(config: NodeConfig, registry: CollectorRegistry) -> NodeCaps:
    return NodeCaps(CapLimits(
        rtmp_per_node=config.rtmp_max_connections, rtmp_per_address=config.rtmp_max_connections_per_address,
        http_per_node=config.http_max_requests, http_per_address=config.http_max_requests_per_address,
        ws_per_node=config.ws_max_connections, hls_held_per_node=config.hls_max_held,
        hls_held_per_address=config.hls_max_held_per_address), registry, parse_networks(config.trusted_proxies))


def rtmp_limits(config: NodeConfig) -> RtmpLimits:
    return RtmpLimits(pre_accept_message_size=config.rtmp_pre_accept_bytes, accept_timeout=config.rtmp_accept_timeout,
                      min_rate=config.rtmp_min_rate, rate_window=config.rtmp_rate_window)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def unavailable(slots: Slots, reason: str, **headers: str) -> web.Response:
    """503 + Retry-After with a JSON error; CORS so a player in a page reads the status."""
    return web.json_response({"error": slots.explain(reason)}, status=503,
                             headers={"Retry-After": str(RETRY_AFTER), "Access-Control-Allow-Origin": "*",
                                      "Cache-Control": "no-store", **headers})


def client_address(remote: str, forwarded_for: str | None,
                   trusted: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]) -> str:
    """The client a request stands for: its peer, or, when the peer is a trusted proxy, the nearest
    address of ``X-Forwarded-For`` (read from the right) that is not a trusted proxy itself."""
    if not trusted or not forwarded_for or not _trusted(remote, trusted):
        return remote
    for hop in reversed(forwarded_for.split(",")):
        hop = hop.strip()
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            return remote  # a malformed chain says nothing reliable
        if not _trusted(hop, trusted):
            return hop
    return remote


def _trusted(address: str, trusted: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    return any(ip in network for network in trusted)


def forwarded_chain(request: web.Request) -> str:
    """``X-Forwarded-For`` for a request this node passes on to another (``hls_forward.py``): the chain it
    came with, then the peer it came from, so the other node, trusting this one (``--trusted-proxies``),
    counts it under the viewer rather than under this node."""
    peer = request.transport.get_extra_info("peername") if request.transport is not None else None
    address = str(peer[0]) if isinstance(peer, tuple) and peer else (request.remote or "")
    incoming = request.headers.get("X-Forwarded-For", "").strip()
    return f"{incoming}, {address}" if incoming else address


@web.middleware
async def caps_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    caps = request.app[CAPS]
    slots = caps.ws if request.headers.get("Upgrade", "").lower() == "websocket" else caps.http
    address = remote = request.remote or ""
    if caps.trusted:
        address = client_address(remote, request.headers.get("X-Forwarded-For"), caps.trusted)
        if address != remote:
            # every later step (chat quotas and bans, held requests, logs) sees the client, not the proxy
            request = request.clone(remote=address)
    reason = slots.enter(address)
    if reason is not None:
        return unavailable(slots, reason)
    try:
        return await handler(request)
    finally:
        slots.leave(address)
