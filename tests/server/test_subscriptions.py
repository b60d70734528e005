"""resources/subscribe: a client hears of changes made by another process on the same data directory."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
import pytest
from mcp import ClientSession, stdio_client
from mcp.shared.exceptions import MCPDeprecationWarning

from ttrpg_mcp.server.launch import STARTUP_TIMEOUT, connect, server_parameters

pytestmark = pytest.mark.anyio

TEST_TIMEOUT = 120
CALL_TIMEOUT = 30.0


async def _call(session: ClientSession, tool: str, **arguments: Any) -> dict[str, Any]:
    with anyio.fail_after(CALL_TIMEOUT):
        result = await session.call_tool(tool, arguments)
    assert not result.is_error, result.content
    assert result.structured_content is not None
    return result.structured_content


async def test_a_subscriber_hears_of_changes_another_process_makes_until_it_unsubscribes(
    data_dir: Path,
) -> None:
    """campaign:// and character:// fire for a write elsewhere; after unsubscribing, only campaign:// does."""
    updated: list[str] = []
    arrived = anyio.Event()

    async def on_message(message: Any) -> None:
        nonlocal arrived
        if isinstance(message, types.ResourceUpdatedNotification):
            updated.append(str(message.params.uri))
            arrived.set()

    async def wait_for(uri: str) -> None:
        nonlocal arrived
        with anyio.fail_after(10):
            while uri not in updated:
                await arrived.wait()
                arrived = anyio.Event()

    with anyio.fail_after(TEST_TIMEOUT):
        async with (
            connect(data_dir) as writer,
            stdio_client(server_parameters(data_dir)) as (read, write),
            ClientSession(read, write, message_handler=on_message) as watcher,
        ):
            with anyio.fail_after(STARTUP_TIMEOUT):
                initialized = await watcher.initialize()
            assert initialized.capabilities.resources is not None
            assert initialized.capabilities.resources.subscribe is True
            campaign = await _call(writer, "create_campaign", name="Ferry")
            mira = await _call(writer, "create_character", campaign_id=campaign["id"], name="Mira", hp_max=9)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", MCPDeprecationWarning)
                await watcher.subscribe_resource(f"campaign://{campaign['id']}")
                await watcher.subscribe_resource(f"character://{mira['id']}")
            await _call(writer, "update_hp", target_id=mira["id"], amount=4)
            await wait_for(f"character://{mira['id']}")
            await wait_for(f"campaign://{campaign['id']}")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", MCPDeprecationWarning)
                await watcher.unsubscribe_resource(f"character://{mira['id']}")
            updated.clear()
            await _call(writer, "update_hp", target_id=mira["id"], amount=1, kind="healing")
            await wait_for(f"campaign://{campaign['id']}")
            seen = list(updated)
            updated.clear()
            # The marker: a later change's notification, sent after anything the heal caused.
            await _call(writer, "add_note", campaign_id=campaign["id"], body="Mira rests.")
            await wait_for(f"campaign://{campaign['id']}")
            assert f"character://{mira['id']}" not in seen + updated
