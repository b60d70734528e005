"""The bridge serves TLS itself when given a certificate: https for the API, wss for the table."""

from __future__ import annotations

import ssl
from pathlib import Path

import httpx
from bridge_process import run_bridge, self_signed_certificate, wait_ready


def test_the_bridge_speaks_tls_with_a_configured_certificate(tmp_path: Path, data_dir: Path) -> None:
    """A self-signed certificate: /healthz over https answers; plain http on that port does not."""
    cert, key = self_signed_certificate(tmp_path)
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
