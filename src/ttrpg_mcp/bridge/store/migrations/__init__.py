"""Alembic migrations of the bridge's store, run by ``BridgeStore.migrate``."""
