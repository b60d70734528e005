"""Settings: flags over environment over TOML, validation at start, and the reference page."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from ttrpg_mcp.bridge.settings import BridgeSettings, McpSettings, load_settings
from ttrpg_mcp.config import resolve_data_dir

DOCS = Path(__file__).parents[2] / "docs" / "configuration.md"


def test_flags_win_over_environment_which_wins_over_the_toml_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each source overrides the next one down, nested groups included."""
    config = tmp_path / "bridge.toml"
    config.write_text('port = 7000\nregistration = "closed"\n[mcp]\nmax_children = 6\nmin_children = 2\n')
    monkeypatch.setenv("TTRPG_REGISTRATION", "invite")
    monkeypatch.setenv("TTRPG_MCP__MIN_CHILDREN", "3")
    settings = load_settings(config, port=7100, host=None)
    assert settings.port == 7100
    assert settings.registration == "invite"
    assert settings.mcp.min_children == 3
    assert settings.mcp.max_children == 6
    assert settings.host == "127.0.0.1"


def test_inconsistent_pool_bounds_are_refused() -> None:
    """min_children above max_children is an error naming both."""
    with pytest.raises(ValidationError, match="min_children"):
        McpSettings(min_children=5, max_children=2)


def test_an_invalid_setting_stops_the_bridge_with_a_clear_message(tmp_path: Path) -> None:
    """A bad value exits with code 2 and names the setting, before anything starts."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "ttrpg_mcp.bridge.cli",
            "--data-dir",
            str(tmp_path),
            "serve",
            "--port",
            "70000",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert "port" in result.stderr


@pytest.mark.sqlite  # the default store: bridge.db in the data directory
def test_the_default_child_command_serves_the_bridges_data_directory(tmp_path: Path) -> None:
    """Without mcp.command the pool runs this package's server on the same data directory."""
    settings = BridgeSettings(data_dir=tmp_path)
    assert settings.mcp_command[-3:] == ["--data-dir", str(tmp_path.resolve()), "serve"]
    assert settings.resolved_database_url.endswith("bridge.db")


def test_both_programs_default_to_one_data_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """ttrpg-mcp (as Claude Desktop starts it) and ttrpg-bridge find the same campaigns by default."""
    monkeypatch.delenv("TTRPG_DATA_DIR", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    expected = (tmp_path / "xdg" / "ttrpg-mcp").resolve()
    assert resolve_data_dir(None) == expected
    assert BridgeSettings().resolved_data_dir == expected
    assert BridgeSettings().mcp_command[-3:] == ["--data-dir", str(expected), "serve"]
    monkeypatch.setenv("TTRPG_DATA_DIR", str(tmp_path / "elsewhere"))
    assert resolve_data_dir(None) == BridgeSettings().resolved_data_dir == (tmp_path / "elsewhere").resolve()


def test_the_readme_connects_claude_desktop_to_the_default_data_directory() -> None:
    """The README's Claude Desktop config names no other data directory than the bridge's default."""
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    config = json.loads(
        readme.split("## Connect Claude Desktop", 1)[1].split("```json", 1)[1].split("```", 1)[0]
    )
    assert "--data-dir" not in config["mcpServers"]["ttrpg"].get("args", [])


def test_every_setting_is_in_the_configuration_reference() -> None:
    """docs/configuration.md lists every field with its environment variable."""
    text = DOCS.read_text()
    for name in BridgeSettings.model_fields:
        if name != "mcp":
            assert f"`TTRPG_{name.upper()}`" in text, name
    for name in McpSettings.model_fields:
        assert f"`TTRPG_MCP__{name.upper()}`" in text, name
