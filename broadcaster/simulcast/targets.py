"""What a simulcast target is: a destination URL, a write-only stream key, a status.

Pure: parsing and validating what the API accepts, the status names, and
:func:`scrub`, which every text a destination sends back goes through before it
is shown or logged (a destination may echo the stream key in its messages).
"""

from __future__ import annotations

import enum
import json
import secrets
import time
import urllib.parse
from dataclasses import asdict, dataclass

from ingest.source import redact

MAX_URL = 1024
MAX_KEY = 1024
MAX_NAME = 100
#: targets one broadcast may have
MAX_TARGETS = 10
DEFAULT_PORTS = {"rtmp": 1935, "rtmps": 443}


class TargetStatus(str, enum.Enum):
    IDLE = "idle"              # the broadcast is not live here, or the target is disabled
    CONNECTING = "connecting"  # connecting, handshaking, waiting for NetStream.Publish.Start
    LIVE = "live"              # media flowing
    RETRYING = "retrying"      # the connection failed or dropped; the next attempt is scheduled
    FAILED = "failed"          # the destination refused us (key, app, certificate): no retry until re-enabled


class InvalidTarget(ValueError):
    """A target the API refuses (400); the message names the field and never contains the stream key."""


@dataclass(frozen=True, slots=True)
class Destination:
    scheme: str
    host: str
    port: int
    app: str

    @property
    def tls(self) -> bool:
        return self.scheme == "rtmps"

    @property
    def tc_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = DEFAULT_PORTS[self.scheme]
        return f"{self.scheme}://{host}{'' if self.port == default else f':{self.port}'}/{self.app}"


def parse_destination(url: str) -> Destination:
    """``rtmp(s)://host[:port]/app[/instance]`` → :class:`Destination`; :class:`InvalidTarget` otherwise."""
    if not isinstance(url, str) or not url.strip():
        raise InvalidTarget("'url' is required: rtmp://host[:port]/app or rtmps://host[:port]/app")
    if len(url) > MAX_URL:
        raise InvalidTarget(f"'url' is longer than {MAX_URL} characters")
    if any(ord(c) < 0x21 or ord(c) == 0x7F for c in url):
        raise InvalidTarget("'url' contains spaces or control characters")
    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise InvalidTarget("'url' must start with rtmp:// or rtmps://")
    if "@" in parts.netloc:
        raise InvalidTarget("'url' must not carry credentials; put the key in 'stream_key'")
    if parts.query or parts.fragment:
        raise InvalidTarget("'url' must not have a query or fragment; put the key in 'stream_key'")
    try:
        host, port = parts.hostname, parts.port
    except ValueError:
        raise InvalidTarget("'url' has an invalid port") from None
    if not host:
        raise InvalidTarget("'url' has no host")
    app = parts.path.strip("/")
    if not app:
        raise InvalidTarget("'url' has no application path (rtmp://host/app)")
    return Destination(scheme, host, port or DEFAULT_PORTS[scheme], app)


def check_stream_key(key: object) -> str:
    if not isinstance(key, str) or not key:
        raise InvalidTarget("'stream_key' is required and must be a non-empty string")
    if len(key) > MAX_KEY:
        raise InvalidTarget(f"'stream_key' is longer than {MAX_KEY} characters")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in key):
        raise InvalidTarget("'stream_key' contains control characters")
    return key


def check_name(name: object, fallback: str) -> str:
    if name is None:
        return fallback
    if not isinstance(name, str) or not name.strip():
        raise InvalidTarget("'name' must be a non-empty string")
    if len(name) > MAX_NAME:
        raise InvalidTarget(f"'name' is longer than {MAX_NAME} characters")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in name):
        raise InvalidTarget("'name' contains control characters")
    return name.strip()


@dataclass(frozen=True, slots=True)
class Target:
    """A stored target.  ``stream_key`` is write-only: :meth:`public` leaves it out."""

    id: str
    broadcast_id: str
    name: str
    url: str
    stream_key: str
    enabled: bool = True
    created_at: float = 0.0

    @property
    def destination(self) -> Destination:
        return parse_destination(self.url)

    def public(self) -> dict[str, object]:
        return {"id": self.id, "name": self.name, "url": self.url, "enabled": self.enabled,
                "created_at": self.created_at}

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, raw: str | bytes) -> "Target":
        return cls(**json.loads(raw))

    def __repr__(self) -> str:  # never the key, whatever prints a target
        return f"Target(id={self.id!r}, broadcast_id={self.broadcast_id!r}, name={self.name!r}, url={self.url!r})"


def new_target(broadcast_id: str, url: str, stream_key: object, name: object) -> Target:
    """A validated new target (raises :class:`InvalidTarget`)."""
    destination = parse_destination(url)
    key = check_stream_key(stream_key)
    return Target(id="t" + secrets.token_hex(6), broadcast_id=broadcast_id,
                  name=check_name(name, destination.host), url=url.strip(), stream_key=key, created_at=time.time())


def scrub(text: str, secret: str) -> str:
    """``text`` with every occurrence of ``secret`` (and its URL-quoted form) replaced by its redacted prefix."""
    if not secret:
        return text
    for form in {secret, urllib.parse.quote(secret, safe="")}:
        text = text.replace(form, redact(secret))
    return text
