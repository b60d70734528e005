"""ttrpg-mcp: a shared tabletop-RPG game table for people and AI assistants.

Two programs ship in this distribution: ``ttrpg-mcp``, an MCP server over stdio, and
``ttrpg-bridge``, the real-time service that browsers talk to.
"""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
