"""Load the offer catalog (offers and stores) from TOML, with errors that say what is wrong."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from models.offer import DAYPARTS, Catalog, Offer, Store

DEFAULT_CATALOG = Path(__file__).with_name("drive_thru.toml")


class CatalogError(ValueError):
    """The catalog file is not usable."""


def _field(item: dict[str, Any], name: str, kind: type, where: str) -> Any:
    if name not in item:
        raise CatalogError(f"{where}: missing field {name!r}")
    value = item[name]
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise CatalogError(f"{where}: {name!r} must be {kind.__name__}, got {value!r}")
    return value


def load_catalog(path: Path | None = None) -> Catalog:
    """Read and validate a catalog file; the default drive-thru menu when `path` is None."""
    path = path or DEFAULT_CATALOG
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise CatalogError(f"cannot read catalog {path}: {exc}") from None
    offers: list[Offer] = []
    for i, item in enumerate(data.get("offers", [])):
        where = f"{path.name}: offers[{i}]"
        dayparts = frozenset(_field(item, "dayparts", list, where))
        if unknown := dayparts - set(DAYPARTS):
            raise CatalogError(f"{where}: unknown dayparts {sorted(unknown)}; known: {DAYPARTS}")
        price = _field(item, "price", float, where)
        if price <= 0:
            raise CatalogError(f"{where}: price must be > 0, got {price}")
        offers.append(
            Offer(
                offer_id=_field(item, "id", str, where),
                name=_field(item, "name", str, where),
                category=_field(item, "category", str, where),
                price=price,
                prep_s=_field(item, "prep_s", int, where),
                dayparts=dayparts,
                tags=frozenset(item.get("tags", [])),
                margin=float(item["margin"]) if "margin" in item else None,
            )
        )
    stores = [
        Store(
            store_id=_field(item, "id", str, f"{path.name}: stores[{i}]"),
            name=_field(item, "name", str, f"{path.name}: stores[{i}]"),
            utc_offset_h=float(item.get("utc_offset_h", 0.0)),
            lanes=int(item.get("lanes", 1)),
            exclude=frozenset(item.get("exclude", [])),
        )
        for i, item in enumerate(data.get("stores", []))
    ]
    if not offers or not stores:
        raise CatalogError(f"{path}: a catalog needs at least one offer and one store")
    for kind, ids in (
        ("offer", [o.offer_id for o in offers]),
        ("store", [s.store_id for s in stores]),
    ):
        if dupes := sorted({i for i in ids if ids.count(i) > 1}):
            raise CatalogError(f"{path}: duplicate {kind} ids {dupes}")
    known = {o.offer_id for o in offers}
    for store in stores:
        if unknown := store.exclude - known:
            raise CatalogError(
                f"{path}: store {store.store_id} excludes unknown offers {sorted(unknown)}"
            )
    return Catalog.of(offers, stores)
