"""The account API under ``/api/auth``: register, log in, refresh, log out, who am I.

The routes are thin: they read the request, call the
:class:`~ttrpg_mcp.bridge.auth.service.AuthService` found at ``request.app.state.auth``, and
return its answer. Every refusal is a :class:`~ttrpg_mcp.bridge.errors.BridgeError`, which
:func:`install_error_handler` turns into the one error body of the HTTP API,
``{"error": {"code", "message", "data"}}``, with the status from the error-code table; a body
that fails validation gets the same shape with ``invalid_message`` and pydantic's list of
problems (without the offending values, which may be passwords). Each route declares the error
statuses it can answer with, so the OpenAPI document is complete enough for schemathesis.

Tokens travel in ``Authorization: Bearer`` headers: the refresh token for ``/refresh`` and
``/logout``, the access token for ``/me``. Token responses carry ``Cache-Control: no-store``
(RFC 6749 section 5.1). Nothing here logs a request body or a header.
"""

from __future__ import annotations

import math
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel

from ttrpg_mcp.bridge import claims
from ttrpg_mcp.bridge.auth import users
from ttrpg_mcp.bridge.auth.schemas import LoginRequest, RegisterRequest, TokenPair, UserInfo
from ttrpg_mcp.bridge.auth.service import AuthService
from ttrpg_mcp.bridge.errors import ERROR_CODES, BridgeError
from ttrpg_mcp.bridge.http.audit_trail import client_address, record_action

__all__ = [
    "ErrorDetail",
    "ErrorResponse",
    "error_response",
    "error_responses",
    "get_auth",
    "install_error_handler",
    "router",
]


class ErrorDetail(BaseModel):
    """One failure: a stable ``code`` from the error table, a readable message, optional data."""

    code: str
    message: str
    data: dict[str, Any] | None = None


class ErrorResponse(BaseModel):
    """The body of every error the HTTP API answers with."""

    error: ErrorDetail


def error_responses(*codes: str) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` for routes that can fail with ``codes``, grouped by HTTP status."""
    by_status: dict[int, list[str]] = {}
    for code in codes:
        by_status.setdefault(ERROR_CODES[code][0], []).append(code)
    return {
        status: {
            "model": ErrorResponse,
            "description": " ".join(f"`{code}`: {ERROR_CODES[code][1]}" for code in grouped),
        }
        for status, grouped in sorted(by_status.items())
    }


def error_response(error: BridgeError) -> JSONResponse:
    """The HTTP answer for ``error``; a 401 names the Bearer scheme, as RFC 6750 asks."""
    headers = {"WWW-Authenticate": "Bearer"} if error.http_status == 401 else {}
    if error.code == "rate_limited" and error.data:
        headers["Retry-After"] = str(max(1, math.ceil(float(error.data.get("retry_after", 1)))))
    return JSONResponse(
        status_code=error.http_status, content={"error": error.to_dict()}, headers=headers or None
    )


async def _on_bridge_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, BridgeError)
    return error_response(exc)


async def _on_validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    # loc, msg and type only: "input" and "ctx" can hold the password that failed validation.
    problems = [
        {
            "loc": [str(part) for part in error.get("loc", ())],
            "msg": error.get("msg", ""),
            "type": error.get("type", ""),
        }
        for error in exc.errors()
    ]
    return error_response(
        BridgeError("invalid_message", "the request does not match its schema", {"errors": problems})
    )


def install_error_handler(app: FastAPI) -> None:
    """Answer :class:`BridgeError` and request validation failures with the API's error body."""
    app.add_exception_handler(BridgeError, _on_bridge_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)


def get_auth(request: Request) -> AuthService:
    """The app's auth service (``app.state.auth``, set by the app's lifespan)."""
    auth = getattr(request.app.state, "auth", None)
    if not isinstance(auth, AuthService):
        raise RuntimeError("app.state.auth is not an AuthService; set it before serving /api/auth")
    return auth


_access_bearer = HTTPBearer(
    scheme_name="accessToken",
    description="An access token from login, register or refresh.",
    auto_error=False,
)
_refresh_bearer = HTTPBearer(
    scheme_name="refreshToken", description="A refresh token; each one works once.", auto_error=False
)


def _token(credentials: HTTPAuthorizationCredentials | None, kind: str) -> str:
    if credentials is None:
        raise BridgeError("unauthenticated", f"send the {kind} token as 'Authorization: Bearer <token>'")
    return credentials.credentials


def _access_token(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_access_bearer)],
) -> str:
    return _token(credentials, "access")


def _refresh_token(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_refresh_bearer)],
) -> str:
    return _token(credentials, "refresh")


AuthDep = Annotated[AuthService, Depends(get_auth)]
AccessBearer = Annotated[str, Depends(_access_token)]
RefreshBearer = Annotated[str, Depends(_refresh_token)]

router = APIRouter(prefix="/api/auth", tags=["auth"])


@router.post(
    "/register",
    status_code=201,
    summary="Create an account and log it in.",
    responses=error_responses("invalid_message", "registration_closed", "user_exists", "rate_limited"),
)
async def register(body: RegisterRequest, auth: AuthDep, request: Request, response: Response) -> TokenPair:
    response.headers["Cache-Control"] = "no-store"
    address = client_address(request)
    # Registering runs Argon2, like a login: the same per-address budget keeps it from being
    # a lever on the CPU.
    throttle = getattr(request.app.state, "register_throttle", None)
    if throttle is not None:
        await throttle.check_shared(address)
    pair = await auth.register(body.name, body.password, body.display_name, body.invite_code)
    await record_action(
        auth.store,
        "account_registered",
        user_id=pair.user_info.id,
        detail={"address": address, "invite": body.invite_code is not None},
    )
    return pair


@router.post(
    "/login",
    summary="Exchange a name and password for a token pair.",
    responses=error_responses("invalid_credentials", "invalid_message", "rate_limited"),
)
async def login(body: LoginRequest, auth: AuthDep, request: Request, response: Response) -> TokenPair:
    response.headers["Cache-Control"] = "no-store"
    throttle = getattr(request.app.state, "login_throttle", None)
    address = client_address(request)
    if body.api_key is not None:
        if throttle is not None:  # the key's visible prefix stands for the account
            await throttle.check_shared(f"key:{body.api_key[:12]}", address)
        try:
            pair = await auth.login_with_key(body.api_key)
        except BridgeError as error:
            await record_action(
                auth.store,
                "sign_in",
                user_id=None,
                result=error.code,
                detail={"address": address, "credential": "api_key"},
            )
            raise
        await record_action(
            auth.store,
            "sign_in",
            user_id=pair.user_info.id,
            detail={"address": address, "credential": "api_key"},
        )
        return pair
    # The model's validator saw to both.
    assert body.name is not None
    assert body.password is not None
    if throttle is not None:
        await throttle.check_shared(body.name, address)
    try:
        pair = await auth.login(body.name, body.password)
    except BridgeError as error:
        # The account tried, if the name is one; never the name typed, which may be a password.
        tried = await auth.store.run(lambda db: users.find_login(db, body.name or ""), readonly=True)
        await record_action(
            auth.store,
            "sign_in",
            user_id=tried.user_id if tried else None,
            result=error.code,
            detail={"address": address, "credential": "password"},
        )
        raise
    await record_action(
        auth.store,
        "sign_in",
        user_id=pair.user_info.id,
        detail={"address": address, "credential": "password"},
    )
    return pair


@router.post(
    "/refresh",
    summary="Exchange a refresh token for a new pair; the old one stops working.",
    responses=error_responses("unauthenticated", "invalid_token", "token_expired"),
)
async def refresh(token: RefreshBearer, auth: AuthDep, request: Request, response: Response) -> TokenPair:
    response.headers["Cache-Control"] = "no-store"
    try:
        return await auth.refresh(token)
    except BridgeError as error:
        if (error.data or {}).get("reason") == "refresh_token_reuse":
            subject = auth.tokens.decode_refresh(token, verify_exp=False).user_id
            await record_action(
                auth.store,
                "refresh_reuse_detected",
                user_id=subject,
                result=error.code,
                detail={"address": client_address(request)},
            )
        raise


@router.post(
    "/logout",
    status_code=204,
    summary="End the session of a refresh token: it and every token descended from its login.",
    responses=error_responses("unauthenticated", "invalid_token"),
)
async def logout(token: RefreshBearer, auth: AuthDep) -> None:
    await auth.logout(token)


@router.get(
    "/me",
    summary="The account an access token belongs to.",
    responses=error_responses("unauthenticated", "invalid_token", "token_expired"),
)
async def me(token: AccessBearer, auth: AuthDep) -> UserInfo:
    user = await auth.verify_access(token)
    admin = await auth.store.run(lambda db: claims.is_admin(db, user.user_id), readonly=True)
    return UserInfo(
        id=user.user_id,
        username=user.name,
        name=user.name,
        display_name=user.display_name,
        is_admin=admin,
    )
