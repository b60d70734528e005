"""The OAuth authorization code flow as a client and its person's browser drive it, for tests.

Registration, the consent page's JSON API standing in for the browser, PKCE and the token
exchange, over a bridge's own endpoints (any node of a cluster).
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx

__all__ = [
    "REDIRECT",
    "approve",
    "authorization_code",
    "bearer",
    "consent_request",
    "exchange",
    "pkce",
    "register_client",
]

REDIRECT = "http://127.0.0.1:33418/callback"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    return verifier, challenge


async def register_client(http: httpx.AsyncClient, **metadata: Any) -> dict[str, Any]:
    body = {
        "client_name": "Claude",
        "redirect_uris": [REDIRECT],
        "token_endpoint_auth_method": "none",
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        **metadata,
    }
    response = await http.post("/register", json=body)
    assert response.status_code == 201, response.text
    registered: dict[str, Any] = response.json()
    return registered


async def consent_request(http: httpx.AsyncClient, client_id: str, challenge: str, state: str) -> str:
    """Start an authorization as the client's browser would; returns the consent page's request id."""
    response = await http.get(
        "/authorize",
        params={
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": REDIRECT,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            "state": state,
            "resource": str(http.base_url).rstrip("/") + "/mcp",
        },
    )
    assert response.status_code == 302, response.text
    location = urlparse(response.headers["location"])
    assert location.path == "/oauth/consent", response.headers["location"]
    return parse_qs(location.query)["request"][0]


async def approve(
    http: httpx.AsyncClient, token: str, request_id: str, campaign_id: str, role: str
) -> httpx.Response:
    return await http.post(
        "/api/oauth/consent",
        json={"request": request_id, "approve": True, "campaign_id": campaign_id, "role": role},
        headers=bearer(token),
    )


async def authorization_code(
    http: httpx.AsyncClient, person: str, client_id: str, campaign_id: str, role: str
) -> tuple[str, str]:
    """A code (and its verifier) the person approved for ``client_id``."""
    verifier, challenge = pkce()
    request_id = await consent_request(http, client_id, challenge, "s1")
    approved = await approve(http, person, request_id, campaign_id, role)
    assert approved.status_code == 200, approved.text
    target = urlparse(approved.json()["redirect_to"])
    query = parse_qs(target.query)
    assert f"{target.scheme}://{target.netloc}{target.path}" == REDIRECT
    assert query["state"] == ["s1"]
    return query["code"][0], verifier


async def exchange(
    http: httpx.AsyncClient, client_id: str, code: str, verifier: str, **extra: str
) -> httpx.Response:
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT,
        "client_id": client_id,
        "code_verifier": verifier,
        **extra,
    }
    return await http.post("/token", data=form)
