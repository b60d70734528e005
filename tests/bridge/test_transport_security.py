"""TLS 1.3 by default, HSTS over https, a Content-Security-Policy on HTML, safe cookies."""

from __future__ import annotations

import ssl
from pathlib import Path

import httpx
import pytest
from bridge_process import run_bridge, self_signed_certificate, wait_ready

from ttrpg_mcp.bridge.http.security_headers import HTML_POLICY, harden, secure_cookie


def _client_context(cert: Path, version: ssl.TLSVersion) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(cert))
    context.minimum_version = context.maximum_version = version
    return context


@pytest.mark.parametrize("configured", ["1.3", "1.2"])
def test_tls_is_1_3_unless_configured_down_to_1_2_with_a_warning(
    tmp_path: Path, data_dir: Path, configured: str
) -> None:
    """TLS 1.2 clients are refused by default, accepted (with a warning) when allowed; HSTS and CSP."""
    cert, key = self_signed_certificate(tmp_path)
    env = {
        "TTRPG_SSL_CERTFILE": str(cert),
        "TTRPG_SSL_KEYFILE": str(key),
        "TTRPG_TLS_MIN_VERSION": configured,
    }
    with run_bridge(data_dir, env, wait=False) as running:
        url = f"https://127.0.0.1:{running.port}"
        modern = _client_context(cert, ssl.TLSVersion.TLSv1_3)
        wait_ready(running, base_url=url, verify=modern)
        health = httpx.get(f"{url}/healthz", verify=modern, timeout=5)
        assert health.headers["strict-transport-security"].startswith("max-age=")
        docs = httpx.get(f"{url}/docs", verify=modern, timeout=5)
        assert docs.headers["content-type"].startswith("text/html")
        assert docs.headers["content-security-policy"] == HTML_POLICY.decode()
        old = _client_context(cert, ssl.TLSVersion.TLSv1_2)
        if configured == "1.3":
            with pytest.raises(httpx.ConnectError):
                httpx.get(f"{url}/healthz", verify=old, timeout=5)
            assert "tls_1_2_allowed" not in running.log()
        else:
            assert httpx.get(f"{url}/healthz", verify=old, timeout=5).status_code == 200
            assert "tls_1_2_allowed" in running.log()


def test_plain_http_gets_no_hsts_but_html_still_gets_a_policy(data_dir: Path) -> None:
    """Without TLS there is no HSTS (browsers ignore it there); the bridge's own pages carry a CSP."""
    with run_bridge(data_dir, {"TTRPG_WEB_DIR": str(data_dir / "no-web-build")}) as running:
        for path in ("/docs", "/"):  # the offline API page, and the page shown with no web build
            page = httpx.get(f"{running.base_url}{path}", timeout=5)
            assert page.headers["content-security-policy"] == HTML_POLICY.decode()
            assert "strict-transport-security" not in page.headers
        api = httpx.get(f"{running.base_url}/healthz", timeout=5)
    assert "content-security-policy" not in api.headers  # JSON is not a document


def test_a_page_with_its_own_policy_keeps_it_and_cookies_are_made_safe() -> None:
    """harden() adds nothing over an existing CSP; Set-Cookie gains Secure, HttpOnly, SameSite=Strict."""
    own = [(b"content-type", b"text/html"), (b"content-security-policy", b"default-src 'none'")]
    assert harden({"scheme": "http"}, own) == own
    assert (
        secure_cookie(b"ttrpg_access=abc; Path=/")
        == b"ttrpg_access=abc; Path=/; Secure; HttpOnly; SameSite=Strict"
    )
    assert secure_cookie(b"a=b; Secure; HttpOnly; SameSite=Lax") == b"a=b; Secure; HttpOnly; SameSite=Lax"
    hardened = harden({"scheme": "https"}, [(b"set-cookie", b"a=b")])
    assert (b"set-cookie", b"a=b; Secure; HttpOnly; SameSite=Strict") in hardened
    assert any(name == b"strict-transport-security" for name, _ in hardened)
