"""Who is who: accounts, password hashes, signed access tokens and rotating refresh tokens.

The pieces, from the bottom: :mod:`.passwords` (Argon2 and the password policy),
:mod:`.signing_key` (the JWT secret, generated once per data directory when not configured),
:mod:`.tokens` (issuing, verifying, rotating and revoking tokens), :mod:`.users` (accounts and
invites), :mod:`.digests` (the SHA-256 form invite codes and API keys are stored in),
:mod:`.api_keys` (long-lived, optionally scoped keys for bots and scripts) and :mod:`.service`,
the async facade the HTTP routes and the WebSocket gateway use.
Every failure is a :class:`~ttrpg_mcp.bridge.errors.BridgeError` with a code from its table.
"""
