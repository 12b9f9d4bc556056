"""Who may do what: bearer keys with scopes (`TAILOR_API_KEYS`) and customer tokens.

| route | needs one of |
|---|---|
| `POST /v1/events` | `ingest` |
| `POST /v1/stores/{s}/context` | `store-device:{s}`, `admin` (`admin` alone with `stock_out`) |
| `DELETE /v1/customers/{c}` | `admin` |
| `GET /v1/customers/{c}/offers` | production: `read`, `admin`, or a customer token for `c` |
| `GET /v1/stores/{s}/board` | production: `store-device:{s}`, `read`, `admin` |

A key listed without scopes has every scope; with no keys at all (development only) every
route is open. In development, reads are open whatever the request carries. A request with
no credential or an unknown one is a 401 with `WWW-Authenticate: Bearer`; a known key or a
good token without the scope a route needs is a 403 naming that scope.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from config.api_keys import ADMIN, INGEST, READ, STORE_DEVICE, store_device
from config.settings import Settings, SettingsError
from engine.api.tokens import TokenRefused, customer_of, looks_like_token
from models.offer import Catalog

__all__ = ["ADMIN", "INGEST", "READ", "Access", "Caller", "store_device"]

Check = Callable[..., Awaitable["Caller"]]
BEARER = HTTPBearer(
    auto_error=False,
    description="a key from TAILOR_API_KEYS, or for one customer's offers a customer token "
    "(`tailor token customer ID`)",
)
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)]


@dataclass(frozen=True, slots=True)
class Caller:
    """Who asks: a key's scopes (None: every scope), or the customer a token is for."""

    scopes: frozenset[str] | None
    customer_id: str | None = None

    def may(self, scope: str) -> bool:
        return self.scopes is None or scope in self.scopes

    def describe(self) -> str:
        if self.customer_id is not None:
            return "a customer token, which reads its own customer's offers only"
        return "a key with " + ("+".join(sorted(self.scopes or ())) or "no scope")


EVERYONE = Caller(None)  # keys off, or a read in development


def unauthorized(message: str) -> HTTPException:
    return HTTPException(401, message, headers={"WWW-Authenticate": "Bearer"})


def _what(request: Request) -> str:
    return f"{request.method} {request.url.path[:100]}"


class Access:
    """The keys and the token secret, checked by the FastAPI dependencies it makes."""

    def __init__(self, settings: Settings, catalog: Catalog) -> None:
        if settings.env == "production" and not settings.api_keys:
            raise SettingsError(
                "TAILOR_ENV=production requires TAILOR_API_KEYS (comma-separated bearer keys, "
                "each KEY or KEY:scope+scope); refusing to start with writes open to anyone"
            )
        for position, key in enumerate(settings.api_keys, 1):
            for scope in key.scopes or ():
                store_id = scope.removeprefix(STORE_DEVICE)
                if scope.startswith(STORE_DEVICE) and store_id not in catalog.stores:
                    raise SettingsError(
                        f"entry {position} of TAILOR_API_KEYS: scope {scope!r} names no store "
                        f"of the catalog; known: {sorted(catalog.stores)}"
                    )
        self.keys = [(k.get_secret_value().encode(), k.scopes) for k in settings.api_keys]
        self.token_secret = settings.token_secret
        self.private_reads = settings.env == "production"

    def identify(self, credentials: HTTPAuthorizationCredentials | None) -> Caller:
        """The caller a credential names; a 401 for none, an unknown key or a bad token."""
        if not self.keys:
            return EVERYONE
        given = credentials.credentials if credentials else ""
        found = None
        for key, scopes in self.keys:  # every key compared, in constant time
            if secrets.compare_digest(given.encode(), key):
                found = Caller(scopes)
        if found is not None:
            return found
        if given and self.token_secret is not None and looks_like_token(given):
            try:
                return Caller(frozenset(), customer_of(self.token_secret.get_secret_value(), given))
            except TokenRefused as exc:
                raise unauthorized(str(exc)) from None
        raise unauthorized("missing or unknown API key: send 'Authorization: Bearer <key>'")

    @staticmethod
    def insist(caller: Caller, what: str, *any_of: str) -> None:
        """A 403 unless the caller has one of these scopes."""
        if caller.customer_id is None and any(caller.may(scope) for scope in any_of):
            return
        needs = " or ".join(repr(s) for s in any_of)
        message = f"{what} needs a key with scope {needs}; this is {caller.describe()}"
        raise HTTPException(403, message)

    def needs(self, scope: str) -> Check:
        """A dependency: a key with `scope`."""

        async def check(request: Request, credentials: Credentials) -> Caller:
            caller = self.identify(credentials)
            self.insist(caller, _what(request), scope)
            return caller

        return check

    def store_device(self) -> Check:
        """A dependency for a store's own writes: its devices' scope, or admin."""

        async def check(request: Request, credentials: Credentials) -> Caller:
            caller = self.identify(credentials)
            store_id = request.path_params["store_id"]
            self.insist(caller, _what(request), store_device(store_id), ADMIN)
            return caller

        return check

    def board_reader(self) -> Check:
        """A dependency for a store's board: open in development."""

        async def check(request: Request, credentials: Credentials) -> Caller:
            if not self.private_reads:
                return EVERYONE
            caller = self.identify(credentials)
            store_id = request.path_params["store_id"]
            self.insist(caller, _what(request), store_device(store_id), READ, ADMIN)
            return caller

        return check

    def customer_reader(self) -> Check:
        """A dependency for a customer's offers: open in development; in production a key
        that reads, or a token for this very customer."""

        async def check(request: Request, credentials: Credentials) -> Caller:
            if not self.private_reads:
                return EVERYONE
            caller = self.identify(credentials)
            if caller.customer_id is not None:
                if caller.customer_id != request.path_params["customer_id"]:
                    raise HTTPException(403, "this customer token is for another customer")
                return caller
            self.insist(caller, _what(request), READ, ADMIN)
            return caller

        return check
