"""Chat quotas per identity and per network address, on this node.

A viewer without a token gets a new anonymous identity for nothing, so limits
kept per socket or per identity alone are escaped by reconnecting.  Here:

- **per identity** (broadcast, viewer id): comments, reactions and the
  flood allowance (``abuse``) are one set of buckets shared by all of the
  identity's sockets and kept across its reconnects;
- **per address**: concurrent sockets, new sockets per second, comments and
  reactions per second, shared by every socket and identity from it.  IPv6
  addresses count per /64 (one subscriber's allocation), IPv4 per address.

A socket past ``max_sockets`` or ``join_rate`` is refused with
``QuotaExceeded`` (close code 4029, ``protocol.CLOSE_QUOTA``); comments and
reactions past either bucket get ``rate_limited``.  State is dropped once
unused and its buckets full again (when it is as good as new), so memory
follows the addresses and identities actually in use.

``address_key`` is what leaves this module about an address: a keyed hash,
per broadcast, that a ban on the address is stored under; the address
itself is never stored nor shown to hosts.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import ipaddress
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from broadcaster.chat.ratelimit import AllOf, TokenBucket


class QuotaExceeded(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class AddressLimits:
    """What one address may do on one node; 0 turns a limit off."""
    max_sockets: int = 32
    join_rate: float = 2.0
    join_burst: float = 32.0
    comment_rate: float = 5.0
    comment_burst: float = 20.0
    react_rate: float = 40.0
    react_burst: float = 120.0

    @classmethod
    def from_rates(cls, sockets: int, joins: float, comments: float, reactions: float) -> "AddressLimits":
        """The node options' form: rates per second; bursts of a socket quota's worth of joins,
        4 s of comments and 3 s of reactions."""
        return cls(sockets, joins, float(sockets or 32), comments, comments * 4, reactions, reactions * 3)


class IdentityRates(Protocol):
    """What one identity may do on one broadcast, all its sockets together (``ChatSettings`` has these)."""
    @property
    def comment_rate(self) -> float: ...
    @property
    def comment_burst(self) -> float: ...
    @property
    def react_rate(self) -> float: ...
    @property
    def react_burst(self) -> float: ...
    @property
    def abuse_burst(self) -> float:
        """Rate-limit errors a client may cause (refilling at 2/s) before it is closed 1008."""


@functools.lru_cache(maxsize=65536)
def network_of(address: str) -> str:
    """The unit an address quota counts: the IPv4 address, or the IPv6 /64."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return address  # a unix socket path or an unknown peer: one unit
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((int(ip) >> 64 << 64, 64)))
    return str(ip)


def address_key(secret: bytes, broadcast_id: str, address: str) -> str:
    """A keyed hash of the address's network, per broadcast (not reversible without the cluster secret)."""
    mac = hmac.new(secret, f"chat-address\0{broadcast_id}\0{network_of(address)}".encode(), hashlib.sha256)
    return mac.hexdigest()[:32]


@dataclass(eq=False, slots=True)
class AddressState:
    network: str
    #: None where the limit is off
    joins: TokenBucket | None
    comments: TokenBucket | None
    reactions: TokenBucket | None
    sockets: int = 0
    released: float = 0.0

    def idle_for(self) -> float:
        return max((b.full_after() for b in (self.joins, self.comments, self.reactions) if b), default=0.0)


@dataclass(eq=False, slots=True)
class IdentityState:
    comments: TokenBucket
    reactions: TokenBucket
    abuse: TokenBucket
    sockets: int = 0
    released: float = 0.0

    def idle_for(self) -> float:
        return max(b.full_after() for b in (self.comments, self.reactions, self.abuse))


S = TypeVar("S", AddressState, IdentityState)


class _Held(Generic[S]):
    """States by key, kept while a socket holds them and until they are as good as new."""

    def __init__(self, make: Callable[[], S], clock: Callable[[], float]) -> None:
        self._make: Callable[[], S] = make
        self._clock = clock
        self.states: dict[str, S] = {}
        self._swept = 0.0

    def acquire(self, key: str, state: S | None = None) -> S:
        if state is None:
            state = self.states.get(key) or self._make()
            self.states[key] = state
        state.sockets += 1
        return state

    def release(self, state: S) -> None:
        state.sockets -= 1
        state.released = self._clock()

    def sweep(self) -> None:
        """Drop unused states whose buckets have refilled (at most once a second; O(states))."""
        now = self._clock()
        if now - self._swept < 1.0:
            return
        self._swept = now
        gone = [k for k, s in self.states.items() if s.sockets <= 0 and now - s.released >= s.idle_for()]
        for key in gone:
            del self.states[key]


class ViewerLimits:
    """The buckets one socket's messages are taken from (identity and address together)."""
    __slots__ = ("comments", "reactions", "abuse")

    def __init__(self, identity: IdentityState, address: AddressState | None) -> None:
        comments, reactions = (address.comments, address.reactions) if address is not None else (None, None)
        self.comments = AllOf(identity.comments, *([comments] if comments is not None else []))
        self.reactions = AllOf(identity.reactions, *([reactions] if reactions is not None else []))
        self.abuse = identity.abuse


class ChatQuotas:
    def __init__(self, address: AddressLimits | None, identity: IdentityRates,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.address = address or AddressLimits()
        self.identity = identity
        a, i = self.address, identity
        self._addresses: _Held[AddressState] = _Held(
            lambda: AddressState("", _bucket(a.join_rate, a.join_burst), _bucket(a.comment_rate, a.comment_burst),
                                 _bucket(a.react_rate, a.react_burst)), clock)
        self._identities: _Held[IdentityState] = _Held(
            lambda: IdentityState(TokenBucket(i.comment_rate, i.comment_burst), TokenBucket(i.react_rate, i.react_burst),
                                  TokenBucket(2.0, i.abuse_burst)), clock)

    @property
    def tracked(self) -> tuple[int, int]:
        """(addresses, identities) with state on this node."""
        return len(self._addresses.states), len(self._identities.states)

    def connect(self, address: str) -> AddressState:
        """A new socket from ``address``; raises ``QuotaExceeded`` past the address's quotas."""
        self._addresses.sweep()
        network = network_of(address)
        state = self._addresses.states.get(network)
        limits = self.address
        if state is not None and limits.max_sockets and state.sockets >= limits.max_sockets:
            raise QuotaExceeded("too_many_sockets", f"more than {limits.max_sockets} chat connections "
                                                    "from your network address")
        state = self._addresses.acquire(network, state)
        state.network = network
        if state.joins is not None and not state.joins.take():
            self._addresses.release(state)
            raise QuotaExceeded("too_many_joins", "too many new chat connections from your network address; "
                                                  "try again in a few seconds")
        return state

    def disconnect(self, state: AddressState) -> None:
        self._addresses.release(state)

    def join(self, broadcast_id: str, viewer_id: str, address: AddressState | None) -> tuple[IdentityState, ViewerLimits]:
        self._identities.sweep()
        identity = self._identities.acquire(f"{broadcast_id}\0{viewer_id}")
        return identity, ViewerLimits(identity, address)

    def leave(self, identity: IdentityState) -> None:
        self._identities.release(identity)


def _bucket(rate: float, burst: float) -> TokenBucket | None:
    return TokenBucket(rate, max(1.0, burst)) if rate > 0 else None
