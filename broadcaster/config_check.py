"""Checking a node configuration (:class:`broadcaster.config.NodeConfig`): every option's range and
form, with a :class:`ConfigError` naming the option; and the parsers of the options' small formats
(listen addresses, networks, base URLs, admin tokens)."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from broadcaster.config import NodeConfig


class ConfigError(ValueError):
    """A configuration value is missing or malformed (the message names it)."""


#: the rule for admin tokens (the generated ones have 32 random URL-safe characters)
MIN_TOKEN_LENGTH = 24
MIN_TOKEN_DISTINCT = 10


def weak_token(token: str) -> str | None:
    """Why ``token`` is too weak to be an admin token, or None if it is acceptable."""
    if len(token) < MIN_TOKEN_LENGTH:
        return f"it has {len(token)} characters, at least {MIN_TOKEN_LENGTH} are required"
    if len(set(token)) < MIN_TOKEN_DISTINCT:
        return f"it uses fewer than {MIN_TOKEN_DISTINCT} different characters"
    return None


def validate(config: NodeConfig) -> None:
    if config.admin_token and (problem := weak_token(config.admin_token)) is not None:
        raise ConfigError(f"option admin_token: too weak: {problem} (generate one with `openssl rand -base64 32`, "
                          "or leave it unset and the node generates one)")
    for name in ("http_port", "rtmp_port", "rtmps_port"):
        port = getattr(config, name)
        if not 0 <= port <= 65535:
            raise ConfigError(f"option {name}: {port} is not a port number")
    for name in ("public_url", "advertise_url"):
        if getattr(config, name) and (problem := bad_base_url(getattr(config, name))) is not None:
            raise ConfigError(f"option {name}: {problem}")
    if config.rtmp_read_coalesce > 1:
        raise ConfigError("option rtmp_read_coalesce: must be at most 1 second (0 = off, negative = by variant)")
    if config.reconnect_grace < 0:
        raise ConfigError("option reconnect_grace: must be >= 0")
    if not 0.5 <= config.segment_target <= 30:
        raise ConfigError("option segment_target: must be between 0.5 and 30 seconds")
    if config.hls_variant not in ("lowlatency", "mpegts"):
        raise ConfigError(f"option hls_variant: {config.hls_variant!r} is not 'lowlatency' or 'mpegts'")
    if not 0.1 <= config.part_target <= config.segment_target / 2:
        raise ConfigError("option part_target: must be between 0.1 s and half the segment target")
    if not 1 <= config.lease_ttl <= 60:
        raise ConfigError("option lease_ttl: must be between 1 and 60 seconds")
    if not 0 <= config.orphan_grace <= 3600:
        raise ConfigError("option orphan_grace: must be between 0 and 3600 seconds")
    if config.live_window < 2:
        raise ConfigError("option live_window: must be at least 2")
    if config.rtmps_port and not (config.tls_cert and config.tls_key):
        raise ConfigError("option rtmps_port: needs tls_cert and tls_key")
    from ingest.whip.ice import IceServer, validate_hosts

    try:
        validate_hosts(config.ice_host)
        for url in config.ice_servers:
            IceServer.parse(url)
    except ValueError as exc:
        raise ConfigError(f"option ice_host/ice_servers: {exc}") from None
    if config.metrics_listen:
        try:
            parse_listen(config.metrics_listen)
        except ValueError as exc:
            raise ConfigError(f"option metrics_listen: {exc}") from None
    for name in ("chat_sockets_per_address", "chat_joins_per_address", "chat_comments_per_address",
                 "chat_reactions_per_address"):
        if getattr(config, name) < 0:
            raise ConfigError(f"option {name}: must be >= 0 (0 turns the limit off)")
    if config.retention_days < 0:
        raise ConfigError("option retention_days: must be >= 0 (0 keeps recordings until deleted)")
    if config.recording_store and not config.recording_store.startswith("s3://"):
        raise ConfigError(f"option recording_store: {config.recording_store!r} is not s3://bucket/prefix")
    if config.recording_store:
        import importlib.util

        if importlib.util.find_spec("aiobotocore") is None:
            raise ConfigError("option recording_store: needs aiobotocore (pip install 'onair[s3]')")
    if config.recording_local_grace < 0:
        raise ConfigError("option recording_local_grace: must be >= 0")
    if not 1 <= config.simulcast_retry_max <= 3600:
        raise ConfigError("option simulcast_retry_max: must be between 1 and 3600 seconds")
    if not 0.5 <= config.simulcast_max_lag <= 60:
        raise ConfigError("option simulcast_max_lag: must be between 0.5 and 60 seconds")
    if config.simulcast_ca_file and not Path(config.simulcast_ca_file).is_file():
        raise ConfigError(f"option simulcast_ca_file: {config.simulcast_ca_file} is not a file")
    for name in ("rtmp_max_connections", "rtmp_max_connections_per_address", "rtmp_min_rate", "http_max_requests",
                 "http_max_requests_per_address", "ws_max_connections", "hls_max_held", "hls_max_held_per_address"):
        if not 0 <= getattr(config, name) <= 10_000_000:
            raise ConfigError(f"option {name}: must be between 0 (no limit) and 10000000")
    try:
        parse_networks(config.trusted_proxies)
    except ValueError as exc:
        raise ConfigError(f"option trusted_proxies: {exc}") from None
    if not 0.1 <= config.rtmp_accept_timeout <= 600:
        raise ConfigError("option rtmp_accept_timeout: must be between 0.1 and 600 seconds")
    if not 0.1 <= config.rtmp_rate_window <= 600:
        raise ConfigError("option rtmp_rate_window: must be between 0.1 and 600 seconds")
    if not 256 <= config.rtmp_pre_accept_bytes <= 1 << 20:
        raise ConfigError("option rtmp_pre_accept_bytes: must be between 256 and 1048576")
    if not 0.1 <= config.webhook_retry_base <= 3600:
        raise ConfigError("option webhook_retry_base: must be between 0.1 and 3600 seconds")
    if config.log_level.lower() not in ("debug", "info", "warning", "error"):
        raise ConfigError(f"option log_level: unknown level {config.log_level!r}")


def bad_base_url(value: str) -> str | None:
    """Why ``value`` is not a usable base URL (``http(s)://host[:port][/path]``), or None."""
    from urllib.parse import urlsplit

    try:
        url = urlsplit(value)
        url.port  # noqa: B018 (raises on a malformed port)
    except ValueError as exc:
        return f"{value!r} is not a URL: {exc}"
    if url.scheme not in ("http", "https") or not url.hostname:
        return f"{value!r} is not an http:// or https:// URL with a host"
    if url.query or url.fragment or url.username or url.password:
        return f"{value!r} must have no query, fragment or credentials"
    return None


def parse_networks(values: Sequence[str]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """Addresses or CIDRs (``10.0.0.5``, ``10.0.0.0/8``, ``::1``) as networks; ValueError names a bad one."""
    networks = []
    for value in values:
        try:
            networks.append(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError:
            raise ValueError(f"{value!r} is not an IP address or network") from None
    return tuple(networks)


def parse_listen(value: str, default_host: str = "127.0.0.1") -> tuple[str, int]:
    """``PORT`` (on ``default_host``: loopback), ``HOST:PORT`` or ``[V6]:PORT`` → (host, port)."""
    host, sep, port = value.rpartition(":")
    if not sep:
        host, port = default_host, value
    host = host.strip("[]") or default_host
    if not port.isdigit() or not 0 < int(port) <= 65535:
        raise ValueError(f"{value!r} is not PORT or HOST:PORT")
    return host, int(port)
