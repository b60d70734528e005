"""What one node does to a seat, every node does: two real nodes on one PostgreSQL and one Redis.

The request goes to one node while the seat it is about sits on the other: the lobby counts the
seats on both, a withdrawn key, grant, agent, account or membership ends the sessions it
covered wherever they are (through the revocation ledger), and a Redis that restarts empty
never makes a seat still connected look gone.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx
import mcp_types as types
import pytest
from bridge_process import RunningBridge
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from node_tables import Cluster, Seat, is_roll, table_across, two_nodes
from oauth_flow import authorization_code, bearer, exchange, register_client
from tables import until
from waiting import eventually

from ttrpg_mcp.bridge import revocations
from ttrpg_mcp.client import BridgeClient

pytestmark = pytest.mark.anyio

TEST_TIMEOUT = 120.0
# A withdrawal reaches the other node's sessions within this (the ledger is polled 4 times a second).
WITHDRAWAL_DEADLINE = 10.0
PASSWORD = "password123"  # noqa: S105  # the test accounts' password


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with two_nodes(tmp_path_factory.mktemp("crossnode")) as running:
        yield running


def _token(seat: Seat) -> str:
    assert seat.client.tokens is not None
    return seat.client.tokens.access_token


def _of(kind: str, participant_id: str) -> Callable[[dict[str, Any]], bool]:
    return lambda event: event.get("type") == kind and event["data"].get("participant_id") == participant_id


def _joined_agent(event: dict[str, Any]) -> bool:
    return event.get("type") == "participant_joined" and event["data"].get("kind") == "agent"


@asynccontextmanager
async def _agent(node: RunningBridge, token: str) -> AsyncIterator[ClientSession]:
    """An MCP client at one node's /mcp with a bearer credential, initialized."""
    http_client = create_mcp_http_client(headers=bearer(token))
    async with (
        http_client,
        streamable_http_client(f"{node.base_url}/mcp", http_client=http_client) as (read, write),
        ClientSession(read, write, client_info=types.Implementation(name="Claude", version="1.0")) as session,
    ):
        await session.initialize()
        yield session


async def _online(node: RunningBridge, seat: Seat, campaign_id: str) -> int:
    """The lobby's count for a campaign, as ``seat``'s person reads it from ``node``."""
    async with httpx.AsyncClient(base_url=node.base_url) as http:
        response = await http.get("/api/campaigns", headers=bearer(_token(seat)))
    assert response.status_code == 200, response.text
    listed = {campaign["id"]: campaign["online"] for campaign in response.json()["campaigns"]}
    return int(listed[campaign_id])


async def _still_playing(agent: ClientSession) -> bool:
    result = await agent.call_tool("roll_dice", {"expression": "1d6", "purpose": "still here"})
    return not result.is_error


async def _refused(agent: ClientSession) -> bool:
    """Whether the agent's session is over: its next call fails, however the SDK reports it."""
    try:
        result = await agent.call_tool("roll_dice", {"expression": "1d6", "purpose": "after"})
    except Exception:
        return True
    return result.is_error


async def test_the_lobby_counts_the_seats_on_every_node(cluster: Cluster) -> None:
    first, second = cluster.nodes
    with anyio.fail_after(TEST_TIMEOUT):
        async with table_across([first, second, second]) as (campaign_id, seats):
            gm = seats[0]
            counts = [await _online(node, gm, campaign_id) for node in (first, second)]
            async with BridgeClient(first.base_url) as late:  # one more seat, on the first node
                await late.register(f"late-{uuid.uuid4().hex[:8]}", PASSWORD)
                code = (await gm.client.create_invite(campaign_id, role="player"))["code"]
                await late.join_campaign(code)
                async with late.connect(transport="websocket", campaign_id=campaign_id):
                    await eventually(
                        lambda: _online_is(second, gm, campaign_id, 4), "4 online on the second node"
                    )
            # It left: both nodes count three again (the seat's node took it from the presence).
            for node in (first, second):
                await eventually(lambda node=node: _online_is(node, gm, campaign_id, 3), "3 online again")
    assert counts == [3, 3]


async def _reaped_since(node: RunningBridge, passes: int) -> bool:
    """Whether the node has finished a pass over the presence since it had finished ``passes``."""
    return node.log().count("presence_reaping_resumed") > passes


async def _online_is(node: RunningBridge, seat: Seat, campaign_id: str, count: int) -> bool:
    return await _online(node, seat, campaign_id) == count


async def test_a_member_removed_or_given_a_role_on_one_node_is_so_at_once_on_the_other(
    cluster: Cluster,
) -> None:
    first, second = cluster.nodes
    with anyio.fail_after(TEST_TIMEOUT):
        async with table_across([first, second]) as (campaign_id, (gm, player)):
            await gm.client.set_member_role(campaign_id, player.user_id, "spectator")  # on the first node

            def demoted(event: dict[str, Any]) -> bool:
                return _of("presence_update", player.user_id)(event) and event["data"]["role"] == "spectator"

            with anyio.fail_after(WITHDRAWAL_DEADLINE):
                await until(player.table, demoted)  # the player's own node applied it
                await until(gm.table, demoted)
            await gm.table.roll_dice("1d4", purpose="demoted")
            after_role = await until(gm.table, is_roll("demoted"))
            await gm.client.remove_member(campaign_id, player.user_id)
            with anyio.fail_after(WITHDRAWAL_DEADLINE):
                told = await until(player.table, lambda event: event.get("type") == "error")
                await until(gm.table, _of("participant_left", player.user_id))
            assert (await player.table.heartbeat())["type"] == "ack"  # the connection stays, off the table
    assert not [event for event in after_role if event["type"] == "presence_update"], "a role applied twice"
    assert told[-1]["error"]["code"] == "forbidden"
    assert told[-1]["error"]["message"] == "you were removed from this campaign"


async def test_a_key_revoked_and_an_account_deleted_on_one_node_close_sessions_on_the_other(
    cluster: Cluster,
) -> None:
    first, second = cluster.nodes
    name = f"owner-{uuid.uuid4().hex[:8]}"
    with anyio.fail_after(TEST_TIMEOUT):
        async with BridgeClient(first.base_url) as on_first, BridgeClient(second.base_url) as on_second:
            await on_first.register(name, PASSWORD)
            await on_second.login(name, PASSWORD)
            key = await on_first.create_api_key("laptop")
            async with BridgeClient(second.base_url) as bystander:
                await bystander.register(f"other-{uuid.uuid4().hex[:8]}", PASSWORD)
                async with (
                    on_second.connect(token=key["key"], transport="websocket") as by_key,
                    on_second.connect(transport="websocket") as by_password,
                    on_second.connect(transport="sse") as streamed,
                    bystander.connect(transport="websocket") as other,
                ):
                    await on_first.revoke_api_key(key["id"])
                    with anyio.fail_after(WITHDRAWAL_DEADLINE):
                        key_closed = await by_key.wait_closed()
                    assert (await by_password.heartbeat())["type"] == "ack"  # the person's other sessions
                    await on_first.delete_account(PASSWORD)
                    with anyio.fail_after(WITHDRAWAL_DEADLINE):
                        account_closed = await by_password.wait_closed()
                        stream_closed = await streamed.wait_closed()
                    assert (await other.heartbeat())["type"] == "ack"
    assert key_closed == (1008, revocations.KEY_REVOKED)
    assert account_closed == (1008, revocations.ACCOUNT_DELETED)
    assert stream_closed[0] is None  # the stream ends (SSE has no close code)


async def test_the_gm_on_one_node_takes_an_agent_seated_on_the_other_from_the_table(cluster: Cluster) -> None:
    first, second = cluster.nodes
    with anyio.fail_after(TEST_TIMEOUT):
        async with table_across([first, second]) as (campaign_id, (gm, player)):
            key = await player.client.create_api_key("table agent", campaign_id=campaign_id, role="player")
            async with (
                _agent(second, key["key"]) as claude,
                player.client.connect(token=key["key"], transport="websocket") as same_key,
            ):
                seat = (await until(gm.table, _joined_agent))[-1]["data"]
                assert await _still_playing(claude)
                async with httpx.AsyncClient(base_url=first.base_url) as http:
                    removed = await http.delete(
                        f"/api/campaigns/{campaign_id}/agents/{seat['participant_id']}",
                        headers=bearer(_token(gm)),
                    )
                assert removed.status_code == 204, removed.text
                with anyio.fail_after(WITHDRAWAL_DEADLINE):
                    await until(gm.table, _of("participant_left", seat["participant_id"]))
                    closed = await same_key.wait_closed()
                assert await _refused(claude)
            keys = await player.client.list_api_keys()
    assert "credentials" not in seat  # the table never sees which key an agent came with
    assert closed == (1008, revocations.AGENT_REMOVED)
    assert [k["revoked_at"] is not None for k in keys if k["id"] == key["id"]] == [True]


async def test_an_agent_authorization_revoked_on_one_node_ends_its_session_on_the_other(
    cluster: Cluster,
) -> None:
    first, second = cluster.nodes
    with anyio.fail_after(TEST_TIMEOUT):
        async with (
            table_across([first, second]) as (campaign_id, (gm, player)),
            httpx.AsyncClient(base_url=first.base_url) as http,
        ):
            client = await register_client(http)
            code, verifier = await authorization_code(
                http, _token(player), client["client_id"], campaign_id, "player"
            )
            access = (await exchange(http, client["client_id"], code, verifier)).json()["access_token"]
            async with _agent(second, access) as claude:
                seat = (await until(gm.table, _joined_agent))[-1]["data"]
                assert await _still_playing(claude)
                mine = (await http.get("/api/me/agents", headers=bearer(_token(player)))).json()["agents"]
                revoked = await http.delete(f"/api/me/agents/{mine[0]['id']}", headers=bearer(_token(player)))
                assert revoked.status_code == 204, revoked.text
                with anyio.fail_after(WITHDRAWAL_DEADLINE):
                    await until(gm.table, _of("participant_left", seat["participant_id"]))
                assert await _refused(claude)


async def test_a_redis_restart_announces_no_departure_of_seats_still_connected(cluster: Cluster) -> None:
    first, second = cluster.nodes
    with anyio.fail_after(TEST_TIMEOUT):
        async with table_across([first, second, second]) as (campaign_id, seats):
            resumed = [node.log().count("presence_reaping_resumed") for node in cluster.nodes]
            cluster.redis.stop()
            cluster.redis.start()
            # A seat changes at once, before its node's next heartbeat rewrites the presence.
            await seats[2].table.set_presence(status="away")
            # Each node has reaped again since the restart: any departure it saw is announced by now.
            for node, before in zip(cluster.nodes, resumed, strict=True):
                await eventually(
                    lambda node=node, before=before: _reaped_since(node, before),
                    "a reaping pass since the restart",
                )
            await seats[1].table.roll_dice("1d4", purpose="after the restart")
            seen = [await until(seat.table, is_roll("after the restart")) for seat in seats]
            online = [await _online(node, seats[0], campaign_id) for node in (first, second)]
    for events in seen:
        assert not [event for event in events if event["type"] == "participant_left"], (
            "a seat was announced gone"
        )
    assert online == [3, 3]
