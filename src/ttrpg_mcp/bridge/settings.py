"""The bridge's one settings model: flags, then ``TTRPG_*`` environment variables, then a TOML file.

Every option has a default that works for one person on a laptop, so ``ttrpg-bridge serve``
needs nothing. Values are validated when the bridge starts, so a typo fails at once with a
message naming the option instead of at the first request. Nested groups are set in the
environment with a double underscore (``TTRPG_MCP__MAX_CHILDREN=8``) and in TOML as tables
(``[mcp]``). ``docs/configuration.md`` is the reference for every field here.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from ttrpg_mcp.config import DATABASE_URL_ENV, content_location, normalize_database_url, resolve_data_dir

__all__ = ["BridgeSettings", "McpSettings", "load_settings"]

BRIDGE_DB_NAME = "bridge.db"


class McpSettings(BaseModel):
    """The pool of stdio MCP children the bridge relays to."""

    command: list[str] | None = Field(
        default=None,
        description="Command starting one stdio MCP server; default: this package's ttrpg-mcp "
        "on the bridge's data directory. Any stdio MCP server can be bridged.",
    )
    min_children: int = Field(
        default=2,
        ge=0,
        le=64,
        description="Children kept warm; two, so that one crash leaves a ready child while it is replaced.",
    )
    max_children: int = Field(default=4, ge=1, le=256, description="Most children at once.")
    max_in_flight: int = Field(
        default=16,
        ge=1,
        le=1024,
        description="Requests one shared child serves at once before another starts.",
    )
    isolation: bool = Field(default=False, description="Lease one child per session instead of sharing.")
    request_timeout: float = Field(
        default=30.0, gt=0, description="Seconds a request may run without progress."
    )
    max_request_timeout: float = Field(
        default=300.0, gt=0, description="Hard ceiling in seconds, progress notifications included."
    )
    startup_timeout: float = Field(
        default=60.0, gt=0, description="Seconds a child has to answer initialize."
    )
    ping_interval: float = Field(
        default=15.0, gt=0, description="Seconds between health pings to idle children."
    )
    ping_timeout: float = Field(
        default=10.0, gt=0, description="A child that misses a ping this long restarts."
    )
    restart_backoff: float = Field(
        default=0.5, gt=0, description="First delay before respawning a dead child."
    )
    restart_backoff_max: float = Field(default=10.0, gt=0, description="Longest delay between respawns.")
    crash_loop_limit: int = Field(
        default=5,
        ge=1,
        description="Crashes within crash_loop_window that open the breaker: reported, and with no ready "
        "child requests fail at once instead of waiting; respawning goes on with backoff.",
    )
    crash_loop_window: float = Field(
        default=60.0, gt=0, description="Seconds over which crashes are counted."
    )
    memory_limit_mb: int = Field(
        default=4096, ge=64, description="Address space of one child (RLIMIT_AS); over it, allocations fail."
    )
    cpu_limit_seconds: int = Field(
        default=3600, ge=1, description="CPU time of one child (RLIMIT_CPU); over it the child is replaced."
    )
    open_files_limit: int = Field(default=1024, ge=16, description="Open files of one child (RLIMIT_NOFILE).")

    @model_validator(mode="after")
    def _bounds(self) -> McpSettings:
        if self.min_children > self.max_children:
            raise ValueError(f"min_children ({self.min_children}) exceeds max_children ({self.max_children})")
        if self.request_timeout > self.max_request_timeout:
            raise ValueError("request_timeout exceeds max_request_timeout")
        return self


class BridgeSettings(BaseSettings):
    """Everything ``ttrpg-bridge`` can be told; see docs/configuration.md."""

    model_config = SettingsConfigDict(
        env_prefix="TTRPG_", env_nested_delimiter="__", extra="forbid", validate_default=True
    )
    # Set by load_settings() before construction; a class variable because pydantic-settings
    # asks for sources on the class.
    toml_file: ClassVar[Path | None] = None

    host: str = Field(default="127.0.0.1", description="Interface to listen on.")
    port: int = Field(default=8080, ge=0, le=65535, description="TCP port; 0 picks a free one.")
    ssl_certfile: Path | None = Field(
        default=None,
        description="TLS certificate (PEM): serve https and wss directly; see docs/deployment.md.",
    )
    ssl_keyfile: Path | None = Field(default=None, description="TLS private key (PEM) for ssl_certfile.")
    tls_min_version: Literal["1.2", "1.3"] = Field(
        default="1.3", description="Oldest TLS version accepted when the bridge terminates TLS ('1.2' warns)."
    )
    public_url: str | None = Field(
        default=None,
        pattern=r"^https?://[^/?#]+(/[^?#]*)?$",
        description="The bridge's address as remote MCP clients reach it (https://table.example.org); OAuth "
        "metadata names it. Unset: the address each request came to.",
    )
    data_dir: Path | None = Field(
        default=None, description="Where the stores and the generated secret live (default: per-user folder)."
    )
    database_url: str | None = Field(
        default=None,
        description="Database of both stores (the bridge's and the MCP content store), e.g. "
        "postgresql://user@host/db for several nodes; default SQLite files in the data directory.",
    )
    redis_url: str | None = Field(default=None, description="Redis for campaign events across nodes.")
    redis_key_prefix: str = Field(
        default="",
        max_length=64,
        description="Put before every Redis key this bridge uses, so deployments may share one Redis.",
    )
    jwt_secret: SecretStr | None = Field(
        default=None, description="Signing key; when unset one is generated once and kept (0600) in data_dir."
    )
    jwt_algorithm: Literal["HS256", "HS384", "HS512"] = Field(
        default="HS256", description="Pinned on decode."
    )
    access_token_ttl: int = Field(default=900, ge=30, description="Access token lifetime in seconds.")
    refresh_token_ttl: int = Field(
        default=30 * 86400, ge=60, description="Refresh token lifetime in seconds."
    )
    registration: Literal["open", "invite", "closed"] = Field(
        default="open", description="Who may create an account through the API."
    )
    auth_timeout: float = Field(default=10.0, gt=0, description="Seconds a new socket has to authenticate.")
    heartbeat_interval: float = Field(default=30.0, gt=0, description="Seconds between server heartbeats.")
    idle_timeout: float = Field(default=90.0, gt=0, description="A silent connection is closed after this.")
    mcp_idle_timeout: float = Field(
        default=1800.0,
        gt=0,
        description="An agent's /mcp session with no request in flight and no open stream ends after this.",
    )
    header_timeout: float = Field(
        default=10.0, gt=0, description="Seconds a new connection has to send its request line and headers."
    )
    max_connections: int = Field(
        default=4096,
        ge=1,
        description="Open connections in all (never above the open-files limit less fd_reserve).",
    )
    max_connections_per_address: int = Field(
        default=256, ge=1, description="Open connections from one client address."
    )
    fd_reserve: int = Field(
        default=256,
        ge=16,
        description="File descriptors kept free of connections, for MCP children and stores.",
    )
    shutdown_grace: float = Field(
        default=10.0, ge=0, description="Seconds in-flight requests get on shutdown."
    )
    max_message_bytes: int = Field(default=100 * 1024, ge=1024, description="Largest accepted message.")
    ws_compression: bool = Field(
        default=False,
        description="Offer permessage-deflate on WebSockets. Off: compressing every event once per "
        "seat cost more CPU than it saved on small JSON events.",
    )
    max_depth: int = Field(default=32, ge=4, le=256, description="Deepest nesting of a message.")
    max_array_length: int = Field(default=5_000, ge=10, description="Most items in one array of a message.")
    max_string_length: int = Field(default=100_000, ge=100, description="Longest string in a message.")
    max_object_keys: int = Field(default=1_000, ge=10, description="Most keys in one object of a message.")
    max_batch: int = Field(default=10, ge=1, le=100, description="Most messages in one batch (JSON array).")
    rate_messages_per_second: float = Field(
        default=20.0, gt=0, description="Messages per second per user and per connection."
    )
    rate_messages_burst: int = Field(
        default=60, ge=1, description="Messages at once before the rate applies."
    )
    rate_cursor_per_second: float = Field(
        default=60.0, gt=0, description="cursor_move per second (own budget)."
    )
    rate_cursor_burst: int = Field(
        default=120, ge=1, description="cursor_move at once before the rate applies."
    )
    rate_abuse_strikes: int = Field(
        default=200, ge=1, description="Refusals within a minute that close the connection (1008)."
    )
    login_per_minute_account: int = Field(
        default=10, ge=1, description="Login attempts per account per minute."
    )
    login_per_minute_ip: int = Field(
        default=30, ge=1, description="Login attempts per client address per minute."
    )
    register_per_minute_ip: int = Field(
        default=30, ge=1, description="Registrations per client address per minute (each runs Argon2)."
    )
    max_participants_per_campaign: int = Field(
        default=20, ge=1, le=1000, description="People at one campaign's table at once."
    )
    max_sessions_per_user: int = Field(
        default=3, ge=1, le=100, description="Open connections (tabs) per user."
    )
    event_retention_count: int = Field(
        default=10_000, ge=100, description="Events kept per campaign for replay after reconnects."
    )
    event_retention_seconds: int = Field(
        default=7 * 86400, ge=60, description="Events older than this are dropped from the log."
    )
    replay_limit: int = Field(
        default=10_000, ge=1, description="Most events replayed on reconnect; beyond, a snapshot is sent."
    )
    dedupe_window_seconds: int = Field(
        default=86400, ge=60, description="How long a request's reply is kept to answer a resend."
    )
    prune_interval: float = Field(default=300.0, gt=0, description="Seconds between retention passes.")
    audit_retention_days: int = Field(
        default=365, ge=0, description="Days audit entries are kept (0: forever)."
    )
    erased_stroke_retention_days: int = Field(
        default=30, ge=0, description="Days an erased canvas stroke is kept (0: forever)."
    )
    dice_log_retention_days: int = Field(
        default=180, ge=0, description="Days a dice roll is kept (0: forever)."
    )
    disabled_account_retention_days: int = Field(
        default=365,
        ge=0,
        description="Days a disabled account nobody signs in to is kept before it is deleted (0: forever).",
    )
    unused_oauth_client_retention_days: int = Field(
        default=30,
        ge=0,
        description="Days a registered OAuth client with no live grant is kept unused before it is "
        "deleted (0: forever).",
    )
    retention_interval: float = Field(
        default=86400.0, gt=0, description="Seconds between passes of the retention settings above."
    )
    outbox_limit: int = Field(
        default=1024, ge=8, description="Messages queued for a slow client before it is disconnected."
    )
    outbox_max_bytes: int = Field(
        default=4 * 1024 * 1024,
        ge=64 * 1024,
        description="Bytes queued for a slow client before it is disconnected (1013).",
    )
    allowed_origins: list[str] = Field(
        default=["http://localhost:5173", "http://127.0.0.1:5173"],
        description="Web origins besides the bridge's own that may use /ws, SSE and the API (CORS).",
    )
    tool_policy: dict[Literal["gm", "player", "spectator"], list[str]] | None = Field(
        default=None,
        description='MCP tools each role may call, e.g. {"player": ["search", "roll_dice"]}; ["*"] is every '
        "tool; a role left out keeps its default (docs/protocol.md).",
    )
    cache_ttl_seconds: float = Field(
        default=30.0, ge=0, description="How long read-only tool results are reused; 0 turns the cache off."
    )
    cache_max_entries: int = Field(default=2_000, ge=1, description="Most cached tool results.")
    lobby_tools: list[str] = Field(
        default=["roll_dice", "search", "list_sources"],
        description='MCP tools a session may call before joining a campaign; ["*"] opens all.',
    )
    web_dir: Path | None = Field(
        default=None,
        description="A built web app (a folder with index.html) to serve at /; default: the package's copy.",
    )
    log_format: Literal["auto", "json", "console"] = Field(
        default="auto", description="auto: console in a terminal, JSON otherwise."
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field(default="info")
    mcp: McpSettings = Field(default_factory=McpSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if cls.toml_file is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=cls.toml_file))
        return tuple(sources)

    @property
    def resolved_data_dir(self) -> Path:
        return resolve_data_dir(self.data_dir)

    @field_validator("database_url")
    @classmethod
    def _psycopg(cls, url: str | None) -> str | None:
        # postgresql:// means psycopg 3, the driver this package ships (not SQLAlchemy's psycopg2).
        return normalize_database_url(url) if url else None

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.resolved_data_dir / BRIDGE_DB_NAME}"

    @property
    def content_store(self) -> Path | str:
        """The MCP content store: the same PostgreSQL database as the bridge's, or content.db."""
        return content_location(self.resolved_data_dir, self.database_url or "sqlite://")

    @property
    def mcp_environment(self) -> dict[str, str]:
        """What the default children are told besides the allow-list: the shared database."""
        store = self.content_store
        if self.mcp.command or not isinstance(store, str):
            return {}  # a configured server may be third-party code: it gets no database URL
        return {DATABASE_URL_ENV: store}

    @property
    def mcp_command(self) -> list[str]:
        """The child command: configured, or this package's server on the same data directory."""
        if self.mcp.command:
            return list(self.mcp.command)
        return [
            sys.executable,
            "-m",
            "ttrpg_mcp.server.cli",
            "--data-dir",
            str(self.resolved_data_dir),
            "serve",
        ]


def load_settings(config_file: Path | None = None, **overrides: Any) -> BridgeSettings:
    """Settings from flags (``overrides``, None meaning unset), environment and an optional TOML file."""
    if config_file is not None and not config_file.is_file():
        raise FileNotFoundError(f"config file {config_file} does not exist")
    BridgeSettings.toml_file = config_file
    try:
        return BridgeSettings(**{key: value for key, value in overrides.items() if value is not None})
    finally:
        BridgeSettings.toml_file = None
