"""``onair_state_entries{table}``: the sizes of the node's in-memory tables, read at each scrape.

What a long broadcast must not grow: chat rooms and what they keep, the chat quotas' per-address
and per-identity state, the playlist watch, the caps' per-address counts, the live sessions, the
event loop's tasks.  ``benchmarks/soak.py`` samples them every 10 s; each read is a ``len`` (or a
sum over rooms), cheap enough for every scrape.  A table a refactor renamed reads as absent
instead of failing the scrape.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator

from aiohttp import web
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric


class StateCollector:
    def __init__(self, app: web.Application) -> None:
        self._app = app

    def sizes(self) -> dict[str, int]:
        from broadcaster.caps import CAPS
        from broadcaster.chat import CHAT_RELAY
        from broadcaster.chat import _ENDPOINT as CHAT_ENDPOINT
        from broadcaster.keys import LIVE, PLAYLIST_WATCH

        app = self._app
        readers: dict[str, Callable[[], int]] = {
            "chat_rooms": lambda: len(app[CHAT_RELAY].rooms),
            "chat_room_viewers": lambda: sum(len(r.viewers) for r in app[CHAT_RELAY].rooms.values()),
            "chat_room_events": lambda: sum(len(r.events) for r in app[CHAT_RELAY].rooms.values()),
            "chat_quota_addresses": lambda: app[CHAT_ENDPOINT].quotas.tracked[0],
            "chat_quota_identities": lambda: app[CHAT_ENDPOINT].quotas.tracked[1],
            "chat_sockets": lambda: len(app[CHAT_ENDPOINT].sockets),
            "playlist_positions": lambda: app[PLAYLIST_WATCH].sizes()[0],
            "playlist_waited": lambda: app[PLAYLIST_WATCH].sizes()[1],
            "caps_addresses": lambda: sum(s.addresses for s in (app[CAPS].rtmp, app[CAPS].http, app[CAPS].ws,
                                                                 app[CAPS].hls_held)),
            "live_sessions": lambda: len(app[LIVE].served()),
            "asyncio_tasks": lambda: len(asyncio.all_tasks()),
        }
        sizes = {}
        for table, read in readers.items():
            try:
                sizes[table] = read()
            except (KeyError, AttributeError, TypeError, RuntimeError):
                continue
        return sizes

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily("onair_state_entries", "Entries in the node's in-memory tables, by table",
                                   labels=["table"])
        for table, size in self.sizes().items():
            family.add_metric([table], size)
        yield family
