"""The shapes the auth API accepts and returns, as pydantic models so OpenAPI can show them.

The login name is ``username`` in requests and in ``user_info``, as the protocol's design
document has it; ``name`` is accepted and answered too, for clients written before that.

The constraints here (name pattern, password length) repeat the ones :mod:`.users` and
:mod:`.passwords` enforce, from the same constants, so that a client reading the OpenAPI
document knows them before it sends anything; the checks below the API stay authoritative.
Token fields are left out of ``repr`` so that a stray log of a model never prints a token.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, model_validator

from ttrpg_mcp.bridge.auth.passwords import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH
from ttrpg_mcp.bridge.auth.users import MAX_DISPLAY_NAME_LENGTH, NAME_PATTERN

__all__ = ["LoginRequest", "RegisterRequest", "TokenPair", "UserInfo"]


class UserInfo(BaseModel):
    """Who a token belongs to."""

    id: str = Field(description="Stable user id, e.g. usr_3fQ9...")
    username: str = Field(description="Login name, unique regardless of case.")
    name: str = Field(description="The login name again (same as username), for older clients.")
    display_name: str = Field(description="Name shown to other players.")
    is_admin: bool = Field(
        default=False, description="The bridge's administrator: may list and claim campaigns nobody is in."
    )

    @model_validator(mode="before")
    @classmethod
    def _same_login_name(cls, data: Any) -> Any:
        # One login name under both spellings: built with either, answered with both.
        if isinstance(data, dict):
            login = data.get("username") or data.get("name")
            data = {**data, "username": login, "name": data.get("name") or login}
        return data


class TokenPair(BaseModel):
    """What register, login and refresh return: a short-lived access token and a refresh token."""

    access_token: str = Field(repr=False, description="Bearer token for the API and the WebSocket.")
    refresh_token: str = Field(
        repr=False, description="Exchange at /api/auth/refresh for a new pair; works once."
    )
    token_type: Literal["bearer"] = "bearer"  # noqa: S105  # the OAuth token type, not a secret
    expires_in: int = Field(description="Seconds until the access token expires.")
    user_info: UserInfo


class RegisterRequest(BaseModel):
    """A new account."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(
        pattern=NAME_PATTERN,
        validation_alias=AliasChoices("username", "name"),
        description="1-64 letters, digits, '_', '-' or '.'. Sent as `username` (or `name`).",
    )
    password: str = Field(repr=False, min_length=MIN_PASSWORD_LENGTH, max_length=MAX_PASSWORD_LENGTH)
    display_name: str | None = Field(
        default=None, max_length=MAX_DISPLAY_NAME_LENGTH, description="Defaults to the name."
    )
    invite_code: str | None = Field(
        default=None, repr=False, max_length=64, description="Required when registration is 'invite'."
    )


class LoginRequest(BaseModel):
    """Credentials: a name and password, or an API key (the spike's ``apiKey``).

    No pattern on the name: a malformed one is simply unknown (401).
    """

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(
        default=None,
        max_length=64,
        validation_alias=AliasChoices("username", "name"),
        description="The login name, sent as `username` (or `name`).",
    )
    password: str | None = Field(default=None, repr=False, max_length=MAX_PASSWORD_LENGTH)
    api_key: str | None = Field(
        default=None,
        repr=False,
        max_length=128,
        validation_alias=AliasChoices("apiKey", "api_key"),
        description="An API key (`ttk_...`) instead of a name and password; the tokens are scoped like it.",
    )

    @model_validator(mode="after")
    def _one_way_in(self) -> LoginRequest:
        if self.api_key is None and (self.name is None or self.password is None):
            raise ValueError("send username and password, or apiKey")
        return self
