"""``/metrics`` on the node's port: per-broadcast series (they name broadcast ids) only with the admin
token; the metrics-only listener (``--metrics-listen``) has them all."""

from __future__ import annotations

import aiohttp

from broadcaster.app import create_app
from broadcaster.config import NodeConfig
from broadcaster.keys import METRICS
from tests.support.node import free_port

ADMIN = "a" * 24


async def test_per_broadcast_series_need_the_admin_token_or_the_metrics_listener(aiohttp_client, tmp_path):
    port = free_port()
    app = create_app(NodeConfig(host="127.0.0.1", rtmp_port=0, data_dir=tmp_path, admin_token=ADMIN,
                                metrics_listen=str(port)))
    client = await aiohttp_client(app)
    metrics = app[METRICS]
    metrics.ingest_fps.labels("0123456789abcdef0123456789abcdef").set(25)
    metrics.segments_written.labels("0123456789abcdef0123456789abcdef", "source").inc()
    metrics.publishes.labels("rtmp").inc()
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Bearer " + ADMIN[:-1] + "b"}):
        text = await (await client.get("/metrics", headers=headers)).text()
        assert "0123456789abcdef" not in text and 'broadcast="' not in text
        assert 'onair_publishes_total{protocol="rtmp"} 1.0' in text
        assert "# TYPE onair_ingest_fps gauge" in text  # the family is there, its samples are not
    text = await (await client.get("/metrics", headers={"Authorization": "Bearer " + ADMIN})).text()
    assert 'onair_ingest_fps{broadcast="0123456789abcdef0123456789abcdef"} 25.0' in text
    async with aiohttp.ClientSession() as http:
        async with http.get(f"http://127.0.0.1:{port}/metrics") as resp:
            assert 'segments_written_total{broadcast="0123456789abcdef0123456789abcdef"' in await resp.text()
