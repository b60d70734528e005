"""The bridge store's tables: identity (users, refresh tokens, registration invites) and the table.

The campaign tables hold what the bridge alone knows about a campaign whose content lives in the
MCP server's store (ARCHITECTURE decision 5): who is in it and with which role, its invites,
its shared table state, canvas strokes, recent dice rolls, and its sequenced event log.

Portable by construction: only types every SQLAlchemy dialect has, so the same models and
migrations serve SQLite and PostgreSQL. Two details make that hold:

* Timestamps go through :class:`UtcDateTime`, which always hands back an aware UTC datetime.
  SQLite has no time zones and returns naive values; comparing those with ``utcnow()`` would
  raise, and a silently naive value would be read in the server's local time by PostgreSQL.
* Constraints and indexes are named by :data:`NAMING_CONVENTION`, so a later migration can
  drop or alter them by name on both dialects (SQLite's batch mode needs names to find them).

User names are unique regardless of case: ``name`` keeps the spelling the user chose and
``name_key`` (its lower-case form) carries the unique constraint.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "NAMING_CONVENTION",
    "AgentGrant",
    "ApiKey",
    "Base",
    "Campaign",
    "CampaignEvent",
    "CampaignInvite",
    "CanvasStroke",
    "DiceLogEntry",
    "FeedCursor",
    "Membership",
    "OAuthClient",
    "OAuthCode",
    "OAuthPendingRequest",
    "OAuthToken",
    "RefreshToken",
    "RegistrationInvite",
    "Revocation",
    "SharedStateRow",
    "SigningKey",
    "User",
    "UtcDateTime",
    "utcnow",
]

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    """The current time, aware and in UTC: the only kind of datetime this store holds."""
    return datetime.now(UTC)


class UtcDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always read back as an aware UTC datetime."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are ambiguous; pass an aware one (see utcnow())")
        value = value.astimezone(UTC)
        # SQLite stores the text without an offset: normalise to UTC first so all rows compare.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    """Declarative base; one metadata for the Alembic migrations to compare against."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    # SQLAlchemy reads this mapping from the class itself; it is never mutated.
    type_annotation_map = {datetime: UtcDateTime}  # noqa: RUF012


class User(Base):
    """An account: a name to log in with, a name to show, and an Argon2 password hash."""

    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    name_key: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(100))
    password_hash: Mapped[str] = mapped_column(String(255))
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(default=None)
    # The bridge's administrator: the first account, or one made with ``user add --admin``; may
    # claim campaigns that exist in the content store but have no members here.
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)

    def __repr__(self) -> str:  # never the hash
        return f"User(id={self.id!r}, name={self.name!r}, disabled={self.disabled!r})"


class RefreshToken(Base):
    """One issued refresh token, by its ``jti``; a login starts a family that rotation extends.

    ``used_at`` is set when the token is exchanged for a new pair; presenting it again means it
    was copied, so the whole family is revoked (``revoked_at`` on every row of it).
    """

    __tablename__ = "refresh_tokens"

    jti: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    family_id: Mapped[str] = mapped_column(String(32), index=True)
    issued_at: Mapped[datetime] = mapped_column()
    expires_at: Mapped[datetime] = mapped_column(index=True)
    used_at: Mapped[datetime | None] = mapped_column(default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)


class RegistrationInvite(Base):
    """A code that lets ``uses_left`` more people register while registration is ``invite``."""

    __tablename__ = "registration_invites"

    # SHA-256 of the code (see ``bridge/auth/digests.py``): a copy of the store admits nobody.
    code_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_by: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()
    uses_left: Mapped[int] = mapped_column(Integer)

    def __repr__(self) -> str:  # even the hash stays out of logs
        return f"RegistrationInvite(expires_at={self.expires_at!r}, uses_left={self.uses_left!r})"


# The role and visibility vocabularies, enforced by the database as well as by the code.
_ROLE_CHECK = "role IN ('gm', 'player', 'spectator')"
_VISIBILITY_CHECK = "visibility IN ('public', 'gm', 'blind', 'self')"


class Campaign(Base):
    """The bridge's record of a campaign: its MCP id, who made it, and its event-log counters.

    ``epoch`` is random per campaign and ``last_seq`` the newest event's ``seq``: a client that
    remembers (epoch, seq) can ask for exactly what it missed, and a changed epoch tells it that
    its numbers mean nothing here (a restored or recreated database).
    """

    __tablename__ = "campaigns"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    created_by: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    archived: Mapped[bool] = mapped_column(Boolean, default=False)
    epoch: Mapped[str] = mapped_column(String(32))
    last_seq: Mapped[int] = mapped_column(Integer, default=0)
    canvas_cleared_at: Mapped[datetime | None] = mapped_column(default=None)


class Membership(Base):
    """One person's seat at a campaign's table, with their role."""

    __tablename__ = "memberships"
    __table_args__ = (CheckConstraint(_ROLE_CHECK, name="role"),)

    campaign_id: Mapped[str] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[str] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    role: Mapped[str] = mapped_column(String(16))
    joined_at: Mapped[datetime] = mapped_column(default=utcnow)


class CampaignInvite(Base):
    """A code that seats ``uses_left`` more people in a campaign with ``role``, until it expires."""

    __tablename__ = "campaign_invites"
    __table_args__ = (CheckConstraint(_ROLE_CHECK, name="role"),)

    # SHA-256 of the code (see ``bridge/auth/digests.py``): a copy of the store seats nobody.
    code_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    campaign_id: Mapped[str] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(16))
    created_by: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()
    uses_left: Mapped[int] = mapped_column(Integer)

    def __repr__(self) -> str:  # the code is a credential
        return (
            f"CampaignInvite(campaign_id={self.campaign_id!r}, role={self.role!r}, "
            f"uses_left={self.uses_left!r})"
        )


class SharedStateRow(Base):
    """A campaign's shared table state (see ``bridge/state.py``), stored whole after each change."""

    __tablename__ = "shared_states"

    campaign_id: Mapped[str] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True)
    document: Mapped[dict[str, Any]] = mapped_column(JSON)
    version: Mapped[int] = mapped_column(Integer)
    last_update: Mapped[datetime] = mapped_column()
    history: Mapped[list[Any]] = mapped_column(JSON)


class CanvasStroke(Base):
    """One stroke on a campaign's canvas; ``ordinal`` is its drawing order, ``erased_at`` its erasure."""

    __tablename__ = "canvas_strokes"
    # The unique (campaign_id, ordinal) index also serves "this campaign's strokes, in order".
    __table_args__ = (
        UniqueConstraint("campaign_id", "ordinal", name="uq_canvas_strokes_campaign_id_ordinal"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    campaign_id: Mapped[str] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    ordinal: Mapped[int] = mapped_column(Integer)
    user_id: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), default=None)
    stroke: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    erased_at: Mapped[datetime | None] = mapped_column(default=None)


class DiceLogEntry(Base):
    """One roll made at a campaign's table, kept among its most recent few."""

    __tablename__ = "dice_log"
    __table_args__ = (
        CheckConstraint(_VISIBILITY_CHECK, name="visibility"),
        Index("ix_dice_log_campaign_id_id", "campaign_id", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    campaign_id: Mapped[str] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    user_id: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), default=None)
    player_name: Mapped[str] = mapped_column(String(100))
    expression: Mapped[str] = mapped_column(String(500))
    purpose: Mapped[str | None] = mapped_column(String(500), default=None)
    visibility: Mapped[str] = mapped_column(String(8))
    result: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class CampaignEvent(Base):
    """One event of a campaign's durable log, numbered by ``seq`` without gaps.

    ``audience`` limits who may receive it (``{"roles": [...]}`` and/or ``{"users": [...]}``);
    ``None`` is everyone in the campaign.
    """

    __tablename__ = "campaign_events"
    # The unique (campaign_id, seq) index is the one replay reads through.
    __table_args__ = (UniqueConstraint("campaign_id", "seq", name="uq_campaign_events_campaign_id_seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    campaign_id: Mapped[str] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    epoch: Mapped[str] = mapped_column(String(32))
    type: Mapped[str] = mapped_column(String(64))
    scope: Mapped[str] = mapped_column(String(16))
    audience: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True), default=None)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class RequestReply(Base):
    """The reply to a request that changed something, kept so a resent request is answered, not redone.

    Keyed by user and the client's request ``id``: after a reconnect a client resends what it
    has no reply for, with the same id, and gets this stored reply instead of a second roll,
    stroke or state change. Rows older than the dedupe window are pruned.
    """

    __tablename__ = "request_replies"
    __table_args__ = (Index("ix_request_replies_created_at", "created_at"),)

    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    request_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    reply: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AuditEntry(Base):
    """Who did what, when, and how it ended: every change and every tool call, never a secret.

    ``campaign_id`` is the table the session sat at (None outside one); a GM reads their
    campaign's entries through ``GET /api/campaigns/{id}/audit``.
    """

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_campaign_id_id", "campaign_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    campaign_id: Mapped[str | None] = mapped_column(String(64), default=None)
    user_id: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), default=None)
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str | None] = mapped_column(String(200), default=None)
    result: Mapped[str] = mapped_column(String(64))
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class SigningKey(Base):
    """The key every node signs tokens with, when the store is shared and none is configured.

    One row, made by the first node that starts and read by every other one, so a token
    issued by one node is accepted by all. It is as secret as the database itself.
    """

    __tablename__ = "signing_keys"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    secret: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class FeedCursor(Base):
    """How far the bridge has published a content store's change log.

    Saved in the transaction that logs each change's table event, so after a restart the feed
    resumes right after the last change it published: no change made while the bridge was down
    (Claude over stdio, say) is lost, and none is published twice.
    """

    __tablename__ = "feed_cursors"

    source: Mapped[str] = mapped_column(String(200), primary_key=True)
    last_id: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class ApiKey(Base):
    """A long-lived credential for a bot, a script or an agent, kept only as its SHA-256.

    ``prefix`` is the key's first few characters, shown in listings so people can tell keys
    apart; it is far too short to guess the rest. ``campaign_id`` and ``role`` narrow what the
    key may do (one campaign, a role no higher than its owner's there).
    """

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    campaign_id: Mapped[str | None] = mapped_column(String(64), default=None)
    role: Mapped[str | None] = mapped_column(String(16), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(default=None)
    last_used_at: Mapped[datetime | None] = mapped_column(default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)

    def __repr__(self) -> str:  # never the hash
        return f"ApiKey(id={self.id!r}, prefix={self.prefix!r}, revoked_at={self.revoked_at!r})"


class OAuthClient(Base):
    """An OAuth client (an MCP client such as Claude) registered through dynamic client registration.

    ``metadata_json`` is the registered client metadata (RFC 7591) minus the secret, of which
    only the SHA-256 is kept (``secret_hash``; ``None`` for a public client).
    """

    __tablename__ = "oauth_clients"

    client_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_name: Mapped[str | None] = mapped_column(String(200), default=None)
    secret_hash: Mapped[str | None] = mapped_column(String(64), default=None)
    metadata_json: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class OAuthPendingRequest(Base):
    """An authorization request waiting for its person on the consent page; gone once decided."""

    __tablename__ = "oauth_pending_requests"

    # SHA-256 of the request id that the consent page's address carries.
    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_id: Mapped[str] = mapped_column(
        ForeignKey("oauth_clients.client_id", ondelete="CASCADE"), index=True
    )
    redirect_uri: Mapped[str] = mapped_column(String(2000))
    redirect_uri_explicit: Mapped[bool] = mapped_column(Boolean)
    code_challenge: Mapped[str] = mapped_column(String(128))
    state: Mapped[str | None] = mapped_column(String(2000), default=None)
    scopes: Mapped[list[str]] = mapped_column(JSON)
    resource: Mapped[str | None] = mapped_column(String(2000), default=None)
    expires_at: Mapped[datetime] = mapped_column(index=True)


class AgentGrant(Base):
    """One person's consent: an OAuth client acts for ``user_id`` in one campaign with ``role``.

    Every code and token descends from a grant; revoking it (``revoked_at``) ends them all at
    once. It is also the family of its refresh tokens: a refresh token presented twice revokes it.
    """

    __tablename__ = "agent_grants"
    __table_args__ = (CheckConstraint(_ROLE_CHECK, name="role"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    client_id: Mapped[str] = mapped_column(
        ForeignKey("oauth_clients.client_id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    campaign_id: Mapped[str] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(16))
    scopes: Mapped[list[str]] = mapped_column(JSON)
    resource: Mapped[str | None] = mapped_column(String(2000), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)
    revoked_by: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), default=None)


class OAuthCode(Base):
    """An authorization code, kept as its SHA-256; it works once, within minutes of consent."""

    __tablename__ = "oauth_codes"

    code_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    grant_id: Mapped[str] = mapped_column(ForeignKey("agent_grants.id", ondelete="CASCADE"), index=True)
    redirect_uri: Mapped[str] = mapped_column(String(2000))
    redirect_uri_explicit: Mapped[bool] = mapped_column(Boolean)
    code_challenge: Mapped[str] = mapped_column(String(128))
    expires_at: Mapped[datetime] = mapped_column(index=True)
    used_at: Mapped[datetime | None] = mapped_column(default=None)


class OAuthToken(Base):
    """An access or refresh token of a grant, kept as its SHA-256; refresh tokens work once."""

    __tablename__ = "oauth_tokens"
    __table_args__ = (CheckConstraint("kind IN ('access', 'refresh')", name="kind"),)

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    grant_id: Mapped[str] = mapped_column(ForeignKey("agent_grants.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(8))
    issued_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(index=True)
    used_at: Mapped[datetime | None] = mapped_column(default=None)


class Revocation(Base):
    """One credential withdrawn: an API key revoked, an account disabled or deleted.

    A ledger every bridge node follows (the newest id, polled), so the live connections of that
    key or account close on whichever node holds them, whoever withdrew it (the HTTP API on
    another node, the command line). The subject is kept as a digest of ``key:ID`` or
    ``user:ID``: a deleted account leaves no id behind; the rows are pruned after a short while.
    """

    __tablename__ = "revocations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    subject_digest: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
