"""A simulcast target's connection against a real nginx (RTMP behind TLS through nginx's stream module):
RTMPS verifies the certificate chain and the host name, a refusal is `failed` and reaches the status-change
hook webhooks subscribe to, and a trusted destination goes live and is ended cleanly (deleteStream)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from broadcaster.simulcast.forwarder import ForwarderOptions, StatusChange
from broadcaster.simulcast.hub import SimulcastHub
from broadcaster.simulcast.metrics import SimulcastMetrics
from broadcaster.simulcast.store import SqliteTargetStore
from broadcaster.simulcast.targets import TargetStatus, new_target
from prometheus_client import CollectorRegistry
from tests.support.nginx_rtmp import NginxRtmp
from tests.support.tls import self_signed

KEY = "fw-test-key-0123456789"


@pytest.fixture
def tls_nginx(tmp_path: Path):
    cert, key = self_signed(tmp_path)
    dest = NginxRtmp(tmp_path / "nginx", tls=(cert, key))
    dest.start()
    yield dest, cert
    dest.stop()


async def _hub(tmp_path: Path, options: ForwarderOptions) -> SimulcastHub:
    store = SqliteTargetStore(tmp_path / "simulcast.db")
    await store.open()
    return SimulcastHub(store, options, SimulcastMetrics(CollectorRegistry()))


async def _until(predicate, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.05)


@pytest.mark.parametrize("host,ca,error", [
    ("127.0.0.1", False, "TLS certificate not trusted: self-signed certificate"),
    ("localhost", True, "TLS certificate not trusted: Hostname mismatch"),
])
async def test_rtmps_verifies_the_certificate_and_a_refusal_is_failed(tmp_path, tls_nginx, host, ca, error):
    dest, cert = tls_nginx
    hub = await _hub(tmp_path, ForwarderOptions(ca_file=str(cert) if ca else "", retry_max=60))
    changes: list[StatusChange] = []
    hub.subscribe(changes.append)
    tap = hub.open("b1")
    target = new_target("b1", f"rtmps://{host}:{dest.rtmps_port}/live", KEY, "self-hosted")
    await hub.store.put(target)
    await hub.refresh("b1")
    try:
        await _until(lambda: any(c.status is TargetStatus.FAILED for c in changes))
        failed = [c for c in changes if c.status is TargetStatus.FAILED][0]
        assert (failed.broadcast_id, failed.target_id, failed.name) == ("b1", target.id, "self-hosted")
        assert failed.error is not None and failed.error.startswith(error), failed.error
        assert [c.status for c in changes] == [TargetStatus.CONNECTING, TargetStatus.FAILED]
        assert hub.runtime("b1", target.id)["status"] == "failed"
    finally:
        await tap.close()
        await hub.store.close()
    assert hub.runtime("b1", target.id)["status"] == "idle"


async def test_a_trusted_destination_goes_live_and_ends_with_delete_stream(tmp_path, tls_nginx):
    dest, cert = tls_nginx
    hub = await _hub(tmp_path, ForwarderOptions(ca_file=str(cert)))
    changes: list[StatusChange] = []
    hub.subscribe(changes.append)
    tap = hub.open("b2")
    target = new_target("b2", dest.rtmps_url(), KEY, "tls")
    await hub.store.put(target)
    await hub.refresh("b2")
    try:
        await _until(lambda: hub.runtime("b2", target.id)["status"] == "live")
    finally:
        await tap.close()
        await hub.store.close()
    assert [c.status for c in changes] == [TargetStatus.CONNECTING, TargetStatus.LIVE, TargetStatus.IDLE]
    await _until(lambda: "deleteStream" in (dest.prefix / "error.log").read_text(), timeout=5)
