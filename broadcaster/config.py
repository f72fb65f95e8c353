"""Node configuration: defaults < TOML file < ``ONAIR_<OPTION>`` env vars < command line.

Every option has one name used everywhere: ``http_port`` is ``--http-port`` on
the command line, ``ONAIR_HTTP_PORT`` in the environment and ``http_port`` in
the TOML file.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from broadcaster.config_check import (
    ConfigError,
    bad_base_url,
    parse_listen,
    parse_networks,
    validate,
    weak_token,
)


@dataclass(frozen=True)
class NodeConfig:
    host: str = "0.0.0.0"
    http_port: int = 8080
    rtmp_port: int = 1935
    #: RTMPS listener (TLS); off unless a port, certificate and key are all given
    rtmps_port: int = 0
    tls_cert: str = ""
    tls_key: str = ""
    data_dir: Path = Path("./data")
    admin_token: str = ""
    #: public base URL used in API answers (rtmp_url, hls_url ...); default: from the request's Host
    public_host: str = ""
    #: the base URL viewers use (the edge's, a CDN's, a load balancer's): hls_url, watch_url ... are built on it,
    #: so they name no node; default: this node, from the request's Host (or public_host)
    public_url: str = ""
    #: the base URL other nodes reach this node's HLS at (kept in Redis with the node's heartbeat);
    #: default: http://<host or this machine's name>:<http_port>
    advertise_url: str = ""
    reconnect_grace: float = 30.0
    #: RTMP: pause reading this long after each read so small writes are gathered (CPU vs latency);
    #: negative = by HLS variant (see ``read_coalesce``)
    rtmp_read_coalesce: float = -1.0
    segment_target: float = 2.0
    #: "lowlatency": LL-HLS, fMP4 (CMAF) segments made of parts, audio as its own rendition;
    #: "mpegts": standard HLS, MPEG-TS segments with audio in every rendition
    hls_variant: str = "lowlatency"
    #: LL-HLS part target duration, seconds
    part_target: float = 0.5
    live_window: int = 6
    ladder: str = "source,1080p,720p,480p,360p"
    redis_url: str = ""
    node_id: str = ""
    #: seconds a node's lease on a live broadcast lasts without renewal (Redis; renewed every quarter)
    lease_ttl: float = 5.0
    #: seconds a broadcast whose node is gone waits in ``reconnecting`` for its publisher, on any node
    orphan_grace: float = 6.0
    log_level: str = "info"
    #: ICE host addresses advertised for WHIP (repeatable); empty: every interface
    ice_host: tuple[str, ...] = ()
    ice_servers: tuple[str, ...] = ()
    chat_history: int = 50
    chat_retention: float = 7 * 24 * 3600.0
    #: chat quotas per network address (IPv6: per /64) on this node; 0 turns one off
    chat_sockets_per_address: int = 32
    chat_joins_per_address: float = 2.0
    chat_comments_per_address: float = 5.0
    chat_reactions_per_address: float = 40.0
    #: caps (broadcaster/caps.py, ingest/rtmp/limits.py); 0 turns a count cap off
    rtmp_max_connections: int = 200
    rtmp_max_connections_per_address: int = 10
    rtmp_accept_timeout: float = 10.0
    rtmp_pre_accept_bytes: int = 8 * 1024
    rtmp_min_rate: int = 1000
    rtmp_rate_window: float = 10.0
    http_max_requests: int = 4000
    http_max_requests_per_address: int = 256
    ws_max_connections: int = 50000
    hls_max_held: int = 2000
    hls_max_held_per_address: int = 64
    #: reverse proxies (addresses or CIDRs) whose X-Forwarded-For names the client (caps, chat quotas)
    trusted_proxies: tuple[str, ...] = ()
    #: seconds between freezes of the long-lived heap (``broadcaster/heap.py``); 0 = CPython's own GC
    gc_freeze_interval: float = 1.0
    #: a metrics-only listener with every series (per-broadcast ones too): PORT (loopback) or HOST:PORT;
    #: empty: none (the public /metrics shows per-broadcast series only to the admin token)
    metrics_listen: str = ""
    #: log every HTTP request (method, path without the query, status, bytes, time) to onair.access
    access_log: bool = False
    #: days an ended broadcast's recording is kept (0: until deleted); a broadcast may override it
    retention_days: float = 0.0
    #: object storage for recordings, ``s3://bucket/prefix`` (empty: kept in the data dir only)
    recording_store: str = ""
    #: the S3 API endpoint URL (empty: AWS's); credentials come from the usual AWS environment/files
    recording_store_endpoint: str = ""
    #: seconds the local copy of an uploaded recording is kept before it is served from the store only
    recording_local_grace: float = 3600.0
    #: simulcast: a PEM CA file trusted for RTMPS destinations besides the system's; longest retry wait (s);
    #: how far (s) a target may fall behind before it skips to the next keyframe
    simulcast_ca_file: str = ""
    simulcast_retry_max: float = 30.0
    simulcast_max_lag: float = 3.0
    #: seconds before the first retry of a failed webhook delivery (doubling each time, at most an hour)
    webhook_retry_base: float = 5.0

    @property
    def read_coalesce(self) -> float:
        """The RTMP read gathering in effect: 0.25 s for standard HLS, where segments are 2 s
        anyway; 0.05 s for LL-HLS, where a quarter second is half a part."""
        if self.rtmp_read_coalesce >= 0:
            return self.rtmp_read_coalesce
        return 0.05 if self.hls_variant == "lowlatency" else 0.25

    @property
    def db_path(self) -> Path:
        return self.data_dir / "onair.db"

    @property
    def hls_dir(self) -> Path:
        return self.data_dir / "hls"


_HELP = {
    "host": "address the HTTP, RTMP and RTMPS listeners bind to",
    "http_port": "HTTP port (API, HLS, pages, WebSocket chat)",
    "rtmp_port": "RTMP ingest port",
    "rtmps_port": "RTMPS (TLS) ingest port; needs --tls-cert and --tls-key",
    "tls_cert": "PEM certificate for RTMPS",
    "tls_key": "PEM private key for RTMPS",
    "data_dir": "state directory (SQLite metadata, HLS output)",
    "admin_token": "admin bearer token for the API (generated once into DATA_DIR/admin-token if unset)",
    "public_host": "host name used in URLs the API hands out (default: the request's Host)",
    "public_url": "base URL viewers reach the cluster at (edge/CDN/load balancer), e.g. https://live.example.com: "
                  "hls_url, watch_url and the other URLs the API hands out are built on it (default: this node)",
    "advertise_url": "internal base URL other nodes reach this node's HLS at, e.g. http://10.0.0.5:8080 "
                     "(multi-node; default: http://HOST:HTTP_PORT, or this machine's name when HOST is 0.0.0.0/::)",
    "reconnect_grace": "seconds a broadcast waits for its publisher to come back before it ends",
    "rtmp_read_coalesce": "seconds an RTMP connection gathers data between reads (less CPU, adds as much latency; 0 = off; "
                          "default 0.05 with LL-HLS, 0.25 with mpegts)",
    "segment_target": "HLS segment target duration, seconds",
    "hls_variant": "'lowlatency' (LL-HLS, fMP4 parts, blocking reload) or 'mpegts' (standard HLS, MPEG-TS segments)",
    "part_target": "LL-HLS part target duration, seconds",
    "live_window": "segments listed in a live media playlist",
    "ladder": "renditions, e.g. 'source,720p,360p' ('source' = H.264 passthrough)",
    "redis_url": "redis://host:port/db for the multi-node chat relay and shared state (default: embedded, one node)",
    "node_id": "this node's name in a cluster (default: random, generated once into DATA_DIR/node-id)",
    "lease_ttl": "seconds a node's lease on a live broadcast lasts in Redis without renewal (a node gone for "
                 "this long loses its broadcasts)",
    "orphan_grace": "seconds a broadcast whose node is gone stays 'reconnecting' (its publisher may come back "
                    "on any node) before it ends",
    "log_level": "debug, info, warning or error",
    "ice_host": "address to gather and advertise as a WebRTC ICE host candidate (repeatable)",
    "ice_servers": "STUN/TURN URL advertised to WHIP clients (repeatable)",
    "chat_history": "comments kept in a broadcast's replayable history",
    "chat_retention": "seconds chat history is retained",
    "metrics_listen": "serve every metric, per-broadcast series included, on PORT (loopback) or HOST:PORT; "
                      "the public /metrics leaves those out unless scraped with the admin token",
    "access_log": "log every HTTP request: method, path (never the query: it may hold grants), status, bytes, time",
    "chat_sockets_per_address": "concurrent chat sockets one network address (IPv6: /64) may hold on this node (0: no limit)",
    "chat_joins_per_address": "new chat sockets per second one address may open (0: no limit)",
    "chat_comments_per_address": "chat comments per second from one address, all its viewers together (0: no limit)",
    "chat_reactions_per_address": "chat reactions per second from one address, all its viewers together (0: no limit)",
    "retention_days": "days an ended broadcast's recording (video, MP4, poster, chat) is kept; 0 = until deleted "
                      "(a broadcast may override it: PATCH /api/broadcasts/<id>/recording)",
    "recording_store": "upload ready recordings to s3://bucket/prefix (off by default)",
    "recording_store_endpoint": "S3 API endpoint URL for --recording-store (e.g. a MinIO or other S3-compatible server)",
    "recording_local_grace": "seconds an uploaded recording's local copy is kept before it is removed",
    "simulcast_ca_file": "PEM file of a CA trusted (besides the system's) to verify RTMPS simulcast destinations",
    "simulcast_retry_max": "longest wait, seconds, between attempts to reach a simulcast destination",
    "simulcast_max_lag": "seconds a simulcast target may fall behind before it skips to the next keyframe",
    "rtmp_max_connections": "RTMP(S) connections this node serves at once (0: no limit)",
    "rtmp_max_connections_per_address": "RTMP(S) connections one network address (IPv6: /64) may hold (0: no limit)",
    "rtmp_accept_timeout": "seconds an RTMP client has from connecting to an accepted publish (handshake, connect, "
                           "publish and the key check), else it is closed",
    "rtmp_pre_accept_bytes": "largest RTMP message a client may send before its publish is requested (bytes; a "
                             "larger header is refused at once)",
    "rtmp_min_rate": "bytes per second an accepted RTMP publisher must average over each --rtmp-rate-window "
                     "(0: no minimum)",
    "rtmp_rate_window": "seconds over which an RTMP publisher's data rate is measured",
    "http_max_requests": "HTTP requests in progress on this node at once, held LL-HLS requests included; past it "
                         "503 + Retry-After (0: no limit)",
    "http_max_requests_per_address": "HTTP requests in progress from one network address (0: no limit)",
    "ws_max_connections": "WebSocket connections this node serves at once (per address: "
                          "--chat-sockets-per-address; 0: no limit)",
    "hls_max_held": "LL-HLS requests held waiting for a part or playlist on this node (0: no limit)",
    "hls_max_held_per_address": "held LL-HLS requests from one network address (0: no limit)",
    "trusted_proxies": "address or CIDR of a reverse proxy in front of the node (repeatable): a request from it is "
                       "counted under the client its X-Forwarded-For names, for the per-address caps and quotas",
    "webhook_retry_base": "seconds before a failed webhook delivery is tried again (doubled after each failure, "
                          "at most 1 h; given up 24 h after the event)",
    "gc_freeze_interval": "seconds between freezes of the long-lived heap out of full garbage collections "
                          "(fewer, shorter event-loop pauses with many viewers; 0 = CPython's default GC)",
}


def _convert(name: str, kind: Any, raw: Any) -> Any:
    try:
        if kind is bool:
            return raw if isinstance(raw, bool) else str(raw).lower() in ("1", "true", "yes", "on")
        if kind is int:
            return int(raw)
        if kind is float:
            return float(raw)
        if kind is Path:
            return Path(str(raw))
        if kind == tuple[str, ...]:
            if isinstance(raw, (list, tuple)):
                return tuple(str(v) for v in raw)
            return tuple(v.strip() for v in str(raw).split(",") if v.strip())
        return str(raw)
    except (TypeError, ValueError):
        raise ConfigError(f"option {name}: cannot read {raw!r} as {getattr(kind, '__name__', kind)}") from None


def _types() -> dict[str, Any]:
    hints = {f.name: f.type for f in fields(NodeConfig)}
    resolved = {}
    for name, hint in hints.items():
        resolved[name] = {"str": str, "int": int, "float": float, "Path": Path,
                          "tuple[str, ...]": tuple[str, ...], "bool": bool}[hint if isinstance(hint, str) else hint.__name__]
    return resolved


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="TOML configuration file (also ONAIR_CONFIG)")
    for name, kind in _types().items():
        flag = "--" + name.replace("_", "-")
        if kind == tuple[str, ...]:
            parser.add_argument(flag, action="append", default=None, help=_HELP.get(name))
        else:
            parser.add_argument(flag, default=None, help=_HELP.get(name))


def load(args: argparse.Namespace | None = None, environ: Mapping[str, str] | None = None) -> NodeConfig:
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    types = _types()
    config_file = getattr(args, "config", None) or environ.get("ONAIR_CONFIG")
    if config_file:
        try:
            with open(config_file, "rb") as fh:
                table = tomllib.load(fh)
        except OSError as exc:
            raise ConfigError(f"config file {config_file}: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {config_file}: {exc}") from None
        table = table.get("onair", table)
        for key, raw in table.items():
            name = key.replace("-", "_")
            if name not in types:
                raise ConfigError(f"config file {config_file}: unknown option {key!r}")
            values[name] = _convert(name, types[name], raw)
    for name, kind in types.items():
        raw = environ.get("ONAIR_" + name.upper())
        if raw is not None and raw != "":
            values[name] = _convert(name, kind, raw)
    if args is not None:
        for name, kind in types.items():
            raw = getattr(args, name, None)
            if raw is not None:
                values[name] = _convert(name, kind, raw)
    config = dataclasses.replace(NodeConfig(), **values)
    validate(config)
    return config


def advertised(config: NodeConfig) -> str:
    """The base URL other nodes reach this node at: ``advertise_url``, or one made of host and port."""
    if config.advertise_url:
        return config.advertise_url.rstrip("/")
    import socket

    host = config.host if config.host not in ("", "0.0.0.0", "::") else socket.gethostname()
    return f"http://[{host}]:{config.http_port}" if ":" in host else f"http://{host}:{config.http_port}"


def parse_args(argv: Sequence[str]) -> NodeConfig:
    parser = argparse.ArgumentParser(prog="onair serve")
    add_arguments(parser)
    return load(parser.parse_args(list(argv)))


__all__ = ["ConfigError", "NodeConfig", "add_arguments", "advertised", "bad_base_url", "load", "parse_args", "parse_listen",
           "parse_networks", "validate", "weak_token"]
