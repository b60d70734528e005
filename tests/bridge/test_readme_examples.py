"""The README's Python examples run as written: a GM script and a player script at one table."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from anyio.abc import Process
from bridge_process import RunningBridge, run_bridge

pytestmark = pytest.mark.anyio

README = Path(__file__).parents[2] / "README.md"
# Two Python starts, two registrations (Argon2), a campaign in the MCP server, a few rolls.
TEST_TIMEOUT = 120.0


@pytest.fixture(scope="module")
def bridge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningBridge]:
    data_dir = tmp_path_factory.mktemp("readme") / "data"
    data_dir.mkdir()
    with run_bridge(data_dir) as running:
        yield running


def _example(name: str) -> str:
    """The README's Python block that starts with ``# name``."""
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)
    matches = [block for block in blocks if block.startswith(f"# {name}")]
    assert len(matches) == 1, f"README has {len(matches)} examples named {name}"
    return matches[0]


async def _lines(process: Process) -> list[str]:
    """Everything the process prints, once it has exited."""
    assert process.stdout is not None
    output = b"".join([chunk async for chunk in process.stdout])
    await process.wait()
    return output.decode().splitlines()


async def test_the_gm_and_player_scripts_see_each_others_rolls(bridge: RunningBridge, tmp_path: Path) -> None:
    """gm.py hands out an invite; player.py joins with it; each prints the other's roll."""
    scripts = {}
    for name in ("gm.py", "player.py"):
        source = _example(name)
        assert 'BRIDGE = "http://127.0.0.1:8080"' in source
        assert "asyncio.run(main(" in source
        scripts[name] = tmp_path / name
        scripts[name].write_text(source.replace("http://127.0.0.1:8080", bridge.base_url))
    with anyio.fail_after(TEST_TIMEOUT):
        async with await anyio.open_process([sys.executable, str(scripts["gm.py"])]) as gm:
            assert gm.stdout is not None
            first = b""
            while not first.endswith(b"\n"):
                first += await gm.stdout.receive(1)
            match = re.match(r"invite code: (\S+) - over (\w+)", first.decode())
            assert match is not None, first
            async with await anyio.open_process(
                [sys.executable, str(scripts["player.py"]), match.group(1)]
            ) as player:
                player_lines = await _lines(player)
            gm_lines = await _lines(gm)
    assert (gm.returncode, player.returncode) == (0, 0)
    assert match.group(2) == "websocket"
    assert re.fullmatch(r"I rolled \[\d, \d\] \+ 3 = \d+", player_lines[0]), player_lines
    assert re.fullmatch(r"mira rolled \d+ for the ogre swings", player_lines[-1]), player_lines
    assert re.fullmatch(r"tomas sat down; I rolled \d+", gm_lines[0]), gm_lines
    assert re.fullmatch(r"tomas rolled \d+ for Tomas dodges", gm_lines[-1]), gm_lines
