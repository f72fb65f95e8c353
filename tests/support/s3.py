"""A real S3 API server for tests: moto in server mode (``moto_server``), on a loopback port, started
and stopped by the test that needs it; and a botocore client of it."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.node import free_port

#: moto accepts any credentials; the node and the test client use these
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


class MotoServer:
    def __init__(self, log_path: Path) -> None:
        self.port = free_port()
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        command = shutil.which("moto_server", path=str(Path(sys.executable).parent)) or shutil.which("moto_server")
        args = [command] if command else [sys.executable, "-m", "moto.server"]
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen([*args, "-H", "127.0.0.1", "-p", str(self.port)], stdout=log,
                                         stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.url}/moto-api/", timeout=1):
                    return
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"moto_server exited: {self.log_path.read_text()[-2000:]}") from None
                time.sleep(0.2)
        raise RuntimeError("moto_server did not answer in 30 s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def client(self) -> Any:
        import botocore.session

        session = botocore.session.get_session()
        return session.create_client("s3", endpoint_url=self.url, region_name="us-east-1",
                                     aws_access_key_id="testing", aws_secret_access_key="testing")


@pytest.fixture
def moto_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[MotoServer]:
    """moto's S3 API server; the AWS credential variables set for this test (and the nodes it starts)."""
    try:
        import moto.server  # noqa: F401
    except ImportError:  # (with CI=true, tests/conftest.py turns the skip into a failure)
        pytest.skip("moto[server] is not installed")
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    server = MotoServer(tmp_path / "moto.log")
    server.start()
    yield server
    server.stop()
