"""Customer tokens: a signed, expiring permission to read one customer's offers.

A website's backend, which knows who is logged in, mints a token for that customer
(`tailor token customer c-1 --ttl 3600`, or any JWT library with the same secret) and
hands it to the browser, which sends it as `Authorization: Bearer <token>` to
`GET /v1/customers/c-1/offers`. No API key ever reaches the browser.

A token is a JWT (RFC 7519) signed with HS256 and `TAILOR_TOKEN_SECRET`: `sub` the
customer id, `aud` "tailor:customer", `exp` and `iat` in epoch seconds.

>>> secret = "s" * 32
>>> customer_of(secret, mint(secret, "c-1", ttl_s=60))
'c-1'
>>> customer_of(secret, mint(secret, "c-1", ttl_s=60, now=time.time() - 3600))
Traceback (most recent call last):
...
engine.api.tokens.TokenRefused: the token expired; ask for a new one
"""

from __future__ import annotations

import time

import jwt
from jwt.types import Options

AUDIENCE = "tailor:customer"
ALGORITHM = "HS256"
MAX_TTL_S = 31 * 86400


class TokenRefused(ValueError):
    """A token that is not good: forged, damaged, expired or of another kind."""


def looks_like_token(credential: str) -> bool:
    """A JWT's shape (three dot-separated parts), to tell a token from an API key."""
    return credential.count(".") == 2 and credential.startswith("ey")


def mint(secret: str, customer_id: str, ttl_s: int, now: float | None = None) -> str:
    """A token letting its bearer read `customer_id`'s offers for `ttl_s` seconds."""
    if not 1 <= ttl_s <= MAX_TTL_S:
        raise ValueError(f"a token lives 1 to {MAX_TTL_S} seconds (got {ttl_s})")
    issued = int(time.time() if now is None else now)
    claims = {"sub": customer_id, "aud": AUDIENCE, "iat": issued, "exp": issued + ttl_s}
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def customer_of(secret: str, token: str) -> str:
    """The customer a good token is for; `TokenRefused` says what is wrong with another."""
    options: Options = {"require": ["exp", "sub", "aud"], "strict_aud": True}
    try:
        claims = jwt.decode(
            token, secret, algorithms=[ALGORITHM], audience=AUDIENCE, options=options
        )
    except jwt.ExpiredSignatureError:
        raise TokenRefused("the token expired; ask for a new one") from None
    except jwt.InvalidTokenError as exc:
        raise TokenRefused(f"not a valid customer token: {exc}") from None
    customer_id = claims["sub"]
    if not isinstance(customer_id, str):
        raise TokenRefused("not a valid customer token: its subject is not a customer id")
    return customer_id
