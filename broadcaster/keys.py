"""Typed application keys shared by the node's modules."""

from __future__ import annotations

from aiohttp import web
from redis.asyncio import Redis

from broadcaster.bus import Bus
from broadcaster.config import NodeConfig
from broadcaster.live import LiveManager
from broadcaster.metrics import NodeMetrics
from broadcaster.registry import BroadcastStore
from ingest.hls.watch import PlaylistWatch

CONFIG = web.AppKey("config", NodeConfig)
STORE = web.AppKey("store", BroadcastStore)
LIVE = web.AppKey("live", LiveManager)
METRICS = web.AppKey("metrics", NodeMetrics)
ADMIN_TOKEN = web.AppKey("admin_token", str)
PLAYLIST_WATCH = web.AppKey("playlist_watch", PlaylistWatch)
#: the node's one Redis client (``broadcaster/storage.py``), present with ``--redis-url``
REDIS = web.AppKey("redis", Redis)
#: the pub/sub bus the chat opens (also carries key-rotation announcements)
CHAT_BUS = web.AppKey("chat_bus", Bus)
