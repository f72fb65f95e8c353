"""ICE configuration of the WHIP edge: which host addresses are gathered, which STUN/TURN servers are used and advertised.

aioice gathers host candidates through the module function
``aioice.ice.get_host_addresses`` and leaves 127.0.0.1 out.  There is no
per-connection option for it, so :func:`restrict_host_addresses` installs, once,
a wrapper around that function that consults a context variable: inside
``with restrict_host_addresses(("127.0.0.1",)):`` every peer connection whose
candidates are gathered (aiortc gathers in tasks created in that context) uses
exactly those addresses; outside it, aioice behaves as shipped.  The server
sets it around ``setLocalDescription``; tests set it around their client's.
"""

from __future__ import annotations

import contextlib
import contextvars
import ipaddress
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import quote

import aioice.ice
from aiortc import RTCIceServer

_HOSTS: contextvars.ContextVar[tuple[str, ...] | None] = contextvars.ContextVar("onair_ice_hosts", default=None)
_install_lock = threading.Lock()
_original_get_host_addresses = aioice.ice.get_host_addresses


def _get_host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
    hosts = _HOSTS.get()
    if hosts is None:
        return _original_get_host_addresses(use_ipv4, use_ipv6)
    chosen = []
    for host in hosts:
        version = ipaddress.ip_address(host).version
        if (version == 4 and use_ipv4) or (version == 6 and use_ipv6):
            chosen.append(host)
    return chosen


def _install() -> None:
    with _install_lock:
        if aioice.ice.get_host_addresses is not _get_host_addresses:
            aioice.ice.get_host_addresses = _get_host_addresses


def validate_hosts(hosts: tuple[str, ...]) -> tuple[str, ...]:
    """The hosts as IP address strings, or ValueError naming the bad one."""
    result = []
    for host in hosts:
        try:
            result.append(str(ipaddress.ip_address(host.strip())))
        except ValueError:
            raise ValueError(f"ICE host {host!r} is not an IP address") from None
    return tuple(result)


@contextlib.contextmanager
def restrict_host_addresses(hosts: tuple[str, ...] | None) -> Iterator[None]:
    """Gather ICE host candidates only on ``hosts`` inside this block (``None``/empty: aioice's default)."""
    if not hosts:
        yield
        return
    _install()
    token = _HOSTS.set(validate_hosts(hosts))
    try:
        yield
    finally:
        _HOSTS.reset(token)


@dataclass(frozen=True)
class IceServer:
    """One STUN/TURN server: ``stun:host[:port]`` or ``turn[s]:user:password@host[:port][?transport=udp]``."""

    url: str
    username: str | None = None
    credential: str | None = None

    @classmethod
    def parse(cls, raw: str) -> "IceServer":
        scheme, sep, rest = raw.strip().partition(":")
        scheme = scheme.lower()
        if not sep or scheme not in ("stun", "stuns", "turn", "turns") or not rest:
            raise ValueError(f"ICE server {raw!r}: expected stun:, stuns:, turn: or turns: URL")
        rest = rest.removeprefix("//")
        username = credential = None
        if "@" in rest:
            userinfo, _, rest = rest.rpartition("@")
            username, _, credential = userinfo.partition(":")
        if not rest or any(c in rest for c in " <>\"'"):
            raise ValueError(f"ICE server {raw!r}: missing or invalid host")
        if scheme.startswith("turn") and not (username and credential):
            raise ValueError(f"ICE server {raw!r}: TURN needs user:password@host")
        return cls(f"{scheme}:{rest}", username or None, credential or None)

    def link_header(self) -> str:
        """RFC 9725 section 4.6 ``Link`` value for this server."""
        value = f'<{self.url}>; rel="ice-server"'
        if self.username is not None:
            value += (f'; username="{quote(self.username, safe="")}"; credential="{quote(self.credential or "", safe="")}"'
                      '; credential-type="password"')
        return value

    def rtc(self) -> RTCIceServer:
        return RTCIceServer(urls=self.url, username=self.username, credential=self.credential)
