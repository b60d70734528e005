"""The bridge serves TLS itself when given a certificate: https for the API, wss for the table."""

from __future__ import annotations

import ssl
import subprocess
from pathlib import Path

import httpx
from bridge_process import run_bridge, wait_ready


def test_the_bridge_speaks_tls_with_a_configured_certificate(tmp_path: Path, data_dir: Path) -> None:
    """A self-signed certificate: /healthz over https answers; plain http on that port does not."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    env = {"TTRPG_SSL_CERTFILE": str(cert), "TTRPG_SSL_KEYFILE": str(key)}
    with run_bridge(data_dir, env, wait=False) as running:
        context = ssl.create_default_context(cafile=str(cert))
        url = f"https://127.0.0.1:{running.port}"
        wait_ready(running, base_url=url, verify=context)
        assert httpx.get(f"{url}/healthz", verify=context, timeout=5).json() == {"status": "ok"}
        try:
            plain = httpx.get(f"http://127.0.0.1:{running.port}/healthz", timeout=5).status_code
        except httpx.HTTPError:
            plain = None
        assert plain != 200
