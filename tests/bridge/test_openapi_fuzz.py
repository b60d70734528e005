"""schemathesis against the HTTP API's OpenAPI document: no request makes the bridge fail.

Runs the schemathesis command line (its fuzzing phase, generated from the live document) at a
real bridge with a logged-in user's token; any 5xx answer, or a crash, fails the test.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
from bridge_process import run_bridge

# Examples per operation: enough to cross every route's parameters, small enough for CI.
EXAMPLES = 10
SCHEMATHESIS_TIMEOUT = 600


def test_no_generated_request_makes_the_api_fail(data_dir: Path) -> None:
    """Every generated request gets a deliberate answer: no 500, no dropped connection."""
    env = {"TTRPG_LOGIN_PER_MINUTE_ACCOUNT": "100000", "TTRPG_LOGIN_PER_MINUTE_IP": "100000"}
    with run_bridge(data_dir, env) as running:
        body = {"name": "fuzzer", "password": "password123"}
        token = httpx.post(f"{running.base_url}/api/auth/register", json=body, timeout=30).json()[
            "access_token"
        ]
        command = [
            str(Path(sys.executable).parent / "schemathesis"),
            "run",
            f"{running.base_url}/openapi.json",
            "--checks",
            "not_a_server_error",
            "--phases",
            "fuzzing",
            "--max-examples",
            str(EXAMPLES),
            "--seed",
            "2026",
            "-H",
            f"Authorization: Bearer {token}",
        ]
        # Run inside the test's own folder: schemathesis keeps a cache in its working directory.
        result = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=SCHEMATHESIS_TIMEOUT,
            check=False,
            cwd=data_dir,
        )
        assert result.returncode == 0, result.stdout[-4000:]
        assert "passed" in result.stdout
        assert running.process.poll() is None  # the bridge is still up
