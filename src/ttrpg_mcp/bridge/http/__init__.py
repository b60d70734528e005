"""The bridge's plain HTTP API (accounts today), as FastAPI routers the app includes."""
