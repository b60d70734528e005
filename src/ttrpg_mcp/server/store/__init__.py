"""The MCP server's content store: SQLAlchemy models, the SQLite database and its migrations."""
