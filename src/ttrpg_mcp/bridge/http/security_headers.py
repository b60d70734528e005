"""Headers every HTTP answer of the bridge gets: HSTS on https, a CSP on HTML, safe cookies.

* ``Strict-Transport-Security`` when the request came over https (the bridge terminating TLS,
  or a proxy that says so in the forwarded headers uvicorn trusts): a browser that has been
  here once will not be talked down to plain http.
* ``Content-Security-Policy`` on every HTML answer that has none of its own. The bridge's own
  HTML is the API documentation (``/docs``, served with its Swagger UI files by the bridge
  itself) and the page shown while the web app is not built; :data:`HTML_POLICY` allows
  nothing from elsewhere. The documentation page starts Swagger UI with an inline script
  (FastAPI's template), hence ``'unsafe-inline'`` here and only here: the web app sets its
  own, hash-based policy and keeps it.
* Every ``Set-Cookie`` gets ``Secure``, ``HttpOnly`` and ``SameSite=Strict`` when missing:
  the bridge's cookies are credentials, never for scripts and never for other sites.

Pure functions over ASGI header lists; the request-log middleware in ``bridge/app.py`` calls
:func:`harden` on each response start.
"""

from __future__ import annotations

from starlette.types import Scope

__all__ = ["HSTS", "HTML_POLICY", "harden", "secure_cookie"]

# A year, and subdomains: the usual preload-ready value.
HSTS = b"max-age=31536000; includeSubDomains"
HTML_POLICY = (
    b"default-src 'self'; "
    b"script-src 'self' 'unsafe-inline'; "
    b"style-src 'self' 'unsafe-inline'; "
    b"font-src 'self'; "
    b"img-src 'self' data:; "
    b"worker-src 'self' blob:; "
    b"connect-src 'self'; "
    b"object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
_COOKIE_ATTRIBUTES = ((b"secure", b"Secure"), (b"httponly", b"HttpOnly"), (b"samesite", b"SameSite=Strict"))


def secure_cookie(value: bytes) -> bytes:
    """A ``Set-Cookie`` value with Secure, HttpOnly and SameSite=Strict added where missing."""
    present = {part.strip().split(b"=", 1)[0].lower() for part in value.split(b";")[1:]}
    missing = [attribute for name, attribute in _COOKIE_ATTRIBUTES if name not in present]
    return b"; ".join([value.rstrip(b"; "), *missing]) if missing else value


def harden(scope: Scope, headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """``headers`` of an answer to ``scope`` with HSTS, a CSP and safe cookies as described above."""
    names = {name.lower() for name, _ in headers}
    content_type = next((value for name, value in headers if name.lower() == b"content-type"), b"")
    hardened = [
        (name, secure_cookie(value)) if name.lower() == b"set-cookie" else (name, value)
        for name, value in headers
    ]
    if scope.get("scheme") == "https" and b"strict-transport-security" not in names:
        hardened.append((b"strict-transport-security", HSTS))
    if content_type.lower().startswith(b"text/html") and b"content-security-policy" not in names:
        hardened.append((b"content-security-policy", HTML_POLICY))
    return hardened
