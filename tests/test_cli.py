"""Both programs take their shared options before the subcommand and after it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ttrpg_mcp.bridge import cli as bridge_cli
from ttrpg_mcp.server import cli as server_cli

# A short subprocess each: a Python start, SQLite migrations, a few lines of output.
COMMAND_TIMEOUT = 120.0


@pytest.mark.parametrize(
    "argv",
    [
        ["serve", "--host", "10.0.0.7", "--port", "9000", "--data-dir", "D", "--config", "C"],
        ["--data-dir", "D", "--config", "C", "serve", "--host", "10.0.0.7", "--port", "9000"],
        [
            "--data-dir",
            "X",
            "serve",
            "--data-dir",
            "D",
            "--config",
            "C",
            "--host",
            "10.0.0.7",
            "--port",
            "9000",
        ],
    ],
)
def test_bridge_serve_takes_data_dir_and_config_on_either_side(argv: list[str]) -> None:
    """``serve --data-dir DIR --config FILE`` parses; one given after the subcommand wins."""
    args = bridge_cli._parser().parse_args(argv)
    assert (args.command, args.host, args.port) == ("serve", "10.0.0.7", 9000)
    assert (args.data_dir, args.config) == (Path("D"), Path("C"))


def test_every_bridge_subcommand_takes_the_shared_options() -> None:
    """Nested admin commands (``user add``, ``invite create``) accept them too."""
    parser = bridge_cli._parser()
    commands = bridge_cli.subcommand_parsers(parser)
    assert len(commands) >= 6
    for command in commands:
        options = {option for action in command._actions for option in action.option_strings}
        assert {"--data-dir", "--config"} <= options, command.prog
    args = parser.parse_args(["user", "add", "bob", "--data-dir", "D"])
    assert (args.admin_command, args.data_dir, args.config) == ("user add", Path("D"), None)


@pytest.mark.parametrize(
    "argv",
    [
        ["import", "rules.md", "--data-dir", "D", "--log-level", "INFO"],
        ["--data-dir", "D", "--log-level", "INFO", "import", "rules.md"],
    ],
)
def test_mcp_import_takes_data_dir_on_either_side(argv: list[str]) -> None:
    """``ttrpg-mcp import FILE --data-dir DIR`` parses like the form with the option first."""
    args = server_cli._parser().parse_args(argv)
    assert (args.command, args.path, args.data_dir, args.log_level) == (
        "import",
        Path("rules.md"),
        "D",
        "INFO",
    )


def test_mcp_defaults_hold_without_options() -> None:
    """No options: the defaults of the top-level parser, whatever the subcommand."""
    for argv in ([], ["serve"], ["demo"]):
        args = server_cli._parser().parse_args(argv)
        assert (args.data_dir, args.log_level) == (None, "WARNING")


def test_the_installed_programs_take_data_dir_after_the_subcommand(tmp_path: Path) -> None:
    """The real commands, options after the subcommand: an import, then a user listing."""
    rules = tmp_path / "rules.md"
    rules.write_text("# Grapple\n\nA grapple is a contest of Athletics.\n")
    env = {key: value for key, value in os.environ.items() if not key.startswith("TTRPG_")}
    bin_dir = Path(sys.executable).parent
    imported = subprocess.run(  # our own console script
        [bin_dir / "ttrpg-mcp", "import", str(rules), "--data-dir", str(tmp_path / "mcp"), "--kind", "rule"],
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
        env=env,
        check=False,
    )
    assert imported.returncode == 0, imported.stderr
    assert "indexed" in imported.stdout
    listed = subprocess.run(  # our own console script
        [bin_dir / "ttrpg-bridge", "user", "list", "--data-dir", str(tmp_path / "bridge")],
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
        env=env,
        check=False,
    )
    assert listed.returncode == 0, listed.stderr
    assert (tmp_path / "bridge").is_dir()


# What the commands run needs these; building the parsers (``--help``) must not import them.
_HEAVY_MODULES = ("sqlalchemy", "mcp", "mcp_types", "fastapi", "starlette", "pydantic", "argon2", "uvicorn")
_IMPORT_PROBE = """
import json, sys
from ttrpg_mcp.bridge import cli as bridge_cli
from ttrpg_mcp.server import cli as server_cli
bridge_cli._parser().format_help()
server_cli._parser().format_help()
heavy = json.loads(sys.argv[1])
before = sorted(name for name in heavy if name in sys.modules)
import ttrpg_mcp.bridge.admin
after = sorted(name for name in heavy if name in sys.modules)
print(json.dumps({"before": before, "after": after}))
"""


def test_building_the_command_lines_imports_no_heavy_library() -> None:
    """Both parsers build in a fresh interpreter without the libraries only the commands use.

    The admin module, loaded afterwards in the same process, does pull SQLAlchemy: proof that
    the probe sees such imports.
    """
    probe = subprocess.run(
        [sys.executable, "-c", _IMPORT_PROBE, json.dumps(_HEAVY_MODULES)],
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
        check=False,
    )
    assert probe.returncode == 0, probe.stderr
    loaded = json.loads(probe.stdout)
    assert loaded["before"] == []
    assert "sqlalchemy" in loaded["after"]
