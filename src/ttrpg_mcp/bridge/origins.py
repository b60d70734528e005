"""Which web pages may talk to the bridge: the Origin check against cross-site WebSocket hijacking.

A browser attaches its cookies and runs scripts of any site; a page on another site could open
a WebSocket (or an EventSource) to the bridge as the logged-in user. Browsers always send the
page's ``Origin`` on those requests, so the bridge refuses an origin that is neither its own
(the ``Host`` it was reached at) nor in ``allowed_origins``. Requests with no ``Origin`` at all
come from programs, not pages (the Python client, curl) and carry their token explicitly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

__all__ = ["origin_allowed"]


def origin_allowed(headers: Mapping[str, str], allowed: Sequence[str]) -> bool:
    """True for no Origin, the bridge's own origin, a listed origin, or when ``*`` is listed."""
    origin = headers.get("origin")
    if origin is None:
        return True
    origin = origin.rstrip("/").lower()
    if "*" in allowed or origin in {entry.rstrip("/").lower() for entry in allowed}:
        return True
    host = headers.get("host", "").lower()
    return bool(host) and origin in (f"http://{host}", f"https://{host}")
