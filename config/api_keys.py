"""API keys and their scopes, as `TAILOR_API_KEYS` lists them.

The variable holds comma-separated entries, each a key alone or a key, a colon and its
scopes joined by `+`:

    TAILOR_API_KEYS="k-ops, k-till:ingest, k-lane1:store-device:s-1, k-web:ingest+read"

A key listed alone keeps every scope (as before scopes existed). The scopes:

- `ingest`: send events (`POST /v1/events`);
- `store-device:<store_id>`: one store's screens and sensors, that store's context
  (`POST /v1/stores/<store_id>/context`, without `stock_out`) and board;
- `read`: any customer's offers and any store's board (a website's backend);
- `admin`: forget customers, stock-outs, any store's context and board, any customer's offers.

A key is everything before the first colon: it cannot hold a colon, a comma or whitespace.

>>> key = parse_entry("k-lane1:store-device:s-1+ingest", 1)
>>> key.get_secret_value(), sorted(key.scopes or ())
('k-lane1', ['ingest', 'store-device:s-1'])
>>> parse_entry("k-ops", 2).scopes is None
True
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import SecretStr

INGEST = "ingest"
READ = "read"
ADMIN = "admin"
STORE_DEVICE = "store-device:"  # + a store id
NAMED_SCOPES = (INGEST, READ, ADMIN)
SCOPE_HELP = (
    f"scopes are {', '.join(NAMED_SCOPES)} and {STORE_DEVICE}<store_id>, joined by '+', as in "
    "'KEY:ingest+read' or 'KEY:store-device:s-1'; a key alone keeps every scope"
)


def store_device(store_id: str) -> str:
    """The scope of one store's devices: its context and its board."""
    return STORE_DEVICE + store_id


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A bearer key and what it may do; `scopes` None: every scope."""

    secret: SecretStr
    scopes: frozenset[str] | None = None

    def get_secret_value(self) -> str:
        """The key itself, as a client sends it in `Authorization: Bearer <key>`."""
        return self.secret.get_secret_value()

    def entry(self) -> str:
        """This key as a `TAILOR_API_KEYS` entry (so a child process gets the same scopes)."""
        if self.scopes is None:
            return self.get_secret_value()
        return self.get_secret_value() + ":" + "+".join(sorted(self.scopes))

    def __repr__(self) -> str:
        scopes = "every scope" if self.scopes is None else "+".join(sorted(self.scopes))
        return f"ApiKey('**********', {scopes})"


def _scope_problem(scope: str) -> str | None:
    if scope in NAMED_SCOPES:
        return None
    if scope.startswith(STORE_DEVICE):
        store_id = scope[len(STORE_DEVICE) :]
        if store_id and len(store_id) <= 128 and "/" not in store_id:
            return None
        return f"{scope!r} names no store id (1 to 128 characters, no '/')"
    return f"unknown scope {scope!r}"


def parse_entry(entry: str, position: int) -> ApiKey:
    """One entry of `TAILOR_API_KEYS`; errors name the entry by position, never the key."""
    key, colon, scopes = entry.strip().partition(":")
    where = f"entry {position} of TAILOR_API_KEYS"
    if not key or any(c.isspace() for c in key):
        raise ValueError(f"{where}: a key is 1 or more characters before ':', no whitespace")
    if not colon:
        return ApiKey(SecretStr(key))
    names = scopes.split("+")
    for name in names:
        if problem := _scope_problem(name):
            raise ValueError(f"{where}: {problem}; {SCOPE_HELP}")
    return ApiKey(SecretStr(key), frozenset(names))


def parse_keys(value: object) -> tuple[ApiKey, ...]:
    """Entries from the variable's text, or keys given in code (text, `SecretStr` or
    `ApiKey`); a key listed twice is refused, since its two scope lists would disagree."""
    if isinstance(value, str):
        items: list[object] = [part for part in value.split(",") if part.strip()]
    elif isinstance(value, list | tuple):
        items = list(value)
    else:
        raise ValueError("comma-separated keys, each 'KEY' or 'KEY:scope+scope'")
    keys = []
    for position, item in enumerate(items, 1):
        if isinstance(item, ApiKey):
            keys.append(item)
        elif isinstance(item, SecretStr | str):
            text = item.get_secret_value() if isinstance(item, SecretStr) else item
            keys.append(parse_entry(text, position))
        else:
            raise ValueError(f"entry {position} of TAILOR_API_KEYS is not text")
    seen: set[str] = set()
    for position, key in enumerate(keys, 1):
        if key.get_secret_value() in seen:
            raise ValueError(f"entry {position} of TAILOR_API_KEYS repeats an earlier key")
        seen.add(key.get_secret_value())
    return tuple(keys)
