"""A throwaway self-signed certificate for TLS tests (made with the openssl CLI)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.conftest import require_tool


def self_signed(folder: Path) -> tuple[Path, Path]:
    """(certificate, key) PEM files for CN=127.0.0.1 (and the subjectAltName IP:127.0.0.1 a verifying
    client such as Python's ssl checks), valid one day, written into ``folder``: the certificate is its own CA."""
    openssl = require_tool("openssl")
    key, cert = folder / "key.pem", folder / "cert.pem"
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    return cert, key
