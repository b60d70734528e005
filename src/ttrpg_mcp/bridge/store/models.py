"""The bridge store's tables: users, their refresh tokens, and registration invites.

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

from sqlalchemy import Boolean, DateTime, Dialect, ForeignKey, Integer, MetaData, String, TypeDecorator
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "NAMING_CONVENTION",
    "Base",
    "RefreshToken",
    "RegistrationInvite",
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

    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_by: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()
    uses_left: Mapped[int] = mapped_column(Integer)

    def __repr__(self) -> str:  # the code is a credential
        return f"RegistrationInvite(expires_at={self.expires_at!r}, uses_left={self.uses_left!r})"
