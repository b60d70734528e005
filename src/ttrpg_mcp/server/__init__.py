"""The ``ttrpg-mcp`` MCP server: tools, resources and prompts over a campaign content store."""
