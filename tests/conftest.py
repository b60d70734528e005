"""Fixtures shared by every test: the async backend and a scratch data directory."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def anyio_backend() -> str:
    """Run async tests on asyncio, the loop uvicorn and the SDK use in production."""
    return "asyncio"


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A fresh, empty data directory for one test."""
    path = tmp_path / "data"
    path.mkdir()
    return path
