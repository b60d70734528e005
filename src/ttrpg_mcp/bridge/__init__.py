"""The ``ttrpg-bridge`` service: browsers over WebSocket and SSE, translated to MCP over stdio."""
