"""Who may write: bearer keys from TAILOR_API_KEYS on every POST and DELETE."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable

from fastapi import Depends, HTTPException
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from config.settings import Settings, SettingsError


def writer_check(settings: Settings) -> Callable[..., Awaitable[None]]:
    """A FastAPI dependency refusing writes without a known key (open when none are set;
    `TAILOR_ENV=production` refuses to start that way)."""
    if settings.env == "production" and not settings.api_keys:
        raise SettingsError(
            "TAILOR_ENV=production requires TAILOR_API_KEYS (comma-separated bearer keys for "
            "writes and deletes); refusing to start with writes open to anyone"
        )
    keys = [k.get_secret_value().encode() for k in settings.api_keys]
    bearer = HTTPBearer(auto_error=False, description="a key from TAILOR_API_KEYS")

    async def may_write(
        credentials: HTTPAuthorizationCredentials | None = Depends(bearer),  # noqa: B008
    ) -> None:
        """Writes and deletes need `Authorization: Bearer <key>` when keys are configured."""
        if not keys:
            return
        given = credentials.credentials.encode() if credentials else b""
        if not any(secrets.compare_digest(given, key) for key in keys):
            raise HTTPException(
                401,
                "missing or unknown API key: send 'Authorization: Bearer <key>'",
                headers={"WWW-Authenticate": "Bearer"},
            )

    return may_write
