"""PostgreSQL going away during play: writes answer ``storage_unavailable``, ``/readyz`` is 503,
and everything comes back by itself once the server is reachable again, nothing acknowledged lost.

The bridge and its MCP children reach a database of their own on the test server through a TCP
proxy the test cuts (every connection closed, new ones refused, as in a server restart) and
restores; the shared server itself is never stopped.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx
import pytest
from bridge_process import RunningBridge, run_bridge
from sqlalchemy import make_url
from tcp_proxy import CuttableProxy
from waiting import wait_until

from pg_databases import DEFAULT_SERVER, fresh_database, server_url
from ttrpg_mcp.client import BridgeClient, BridgeClientError

pytestmark = pytest.mark.anyio

RECOVERY_TIMEOUT = 60.0


@pytest.fixture
def proxied_database() -> Iterator[tuple[str, CuttableProxy]]:
    """A fresh database's URL through a proxy, and the proxy."""
    with fresh_database(server_url() or DEFAULT_SERVER) as url:
        parsed = make_url(url)
        proxy = CuttableProxy((parsed.host or "127.0.0.1", parsed.port or 5432))
        try:
            yield parsed.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False), proxy
        finally:
            proxy.close()


def _readyz(bridge: RunningBridge) -> httpx.Response:
    return httpx.get(f"{bridge.base_url}/readyz", timeout=10)


def _wait_for_status(bridge: RunningBridge, status: int) -> float:
    """Seconds until /readyz answers ``status``."""
    started = time.monotonic()
    wait_until(lambda: _readyz(bridge).status_code == status, f"/readyz {status}", RECOVERY_TIMEOUT)
    return time.monotonic() - started


async def test_a_database_that_goes_away_is_storage_unavailable_until_it_returns(
    proxied_database: tuple[str, CuttableProxy], data_dir: Path
) -> None:
    """Refused writes everywhere while cut; ready again, and every acknowledged write kept, after."""
    url, proxy = proxied_database
    with run_bridge(data_dir, {"TTRPG_DATABASE_URL": url}) as bridge:
        gm_name = f"gm-{uuid.uuid4().hex[:6]}"
        async with BridgeClient(bridge.base_url) as gm:
            await gm.register(gm_name, "password123")
            campaign_id = (await gm.create_campaign("Outage"))["id"]
            async with gm.connect() as table:
                await table.join(campaign_id)
                await table.update_state(["custom", "before"], 1)
                hero = await table.call_tool(
                    "create_character", {"campaign_id": campaign_id, "name": "Acknowledged"}
                )

                proxy.cut()

                async with httpx.AsyncClient(base_url=bridge.base_url, timeout=30) as http:
                    refused = await http.post(
                        "/api/auth/register",
                        json={"name": f"late-{uuid.uuid4().hex[:6]}", "password": "password123"},
                    )
                assert refused.status_code == 503, refused.text
                assert refused.json()["error"]["code"] == "storage_unavailable"
                for attempt in (
                    table.update_state(["custom", "during"], 1),
                    table.roll_dice("1d20", "lost?"),
                    table.call_tool("create_character", {"campaign_id": campaign_id, "name": "Never"}),
                ):
                    with pytest.raises(BridgeClientError) as failure:
                        await attempt
                    assert failure.value.code == "storage_unavailable", failure.value
                await anyio.to_thread.run_sync(_wait_for_status, bridge, 503)
                assert _readyz(bridge).json()["checks"]["store"] != "ok"
                assert (await table.heartbeat())["type"] == "ack"  # the connection carries on

                proxy.restore()
                recovered_in = await anyio.to_thread.run_sync(_wait_for_status, bridge, 200)
                print(f"\npostgresql: ready again {recovered_in:.2f} s after it was reachable")
                await table.update_state(["custom", "after"], 1)
                await gm.register(f"late-{uuid.uuid4().hex[:6]}", "password123")
                after = await table.call_tool(
                    "create_character", {"campaign_id": campaign_id, "name": "After"}
                )
                assert after["name"] == "After"
                snapshot = await table.join(campaign_id)
                names = await table.call_tool("get_character", {"character_id": hero["id"]})
    assert snapshot["state"]["custom"] == {"before": 1, "after": 1}
    assert names["name"] == "Acknowledged"
