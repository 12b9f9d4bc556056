"""Offers and stores: the catalog a decision chooses from."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

DAYPARTS = ("breakfast", "lunch", "afternoon", "dinner", "late")


@dataclass(frozen=True, slots=True)
class Offer:
    offer_id: str
    name: str
    category: str
    price: float
    prep_s: int
    dayparts: frozenset[str]
    tags: frozenset[str] = frozenset()
    margin: float | None = None  # profit per sale; the price when unknown

    def value(self, kind: str) -> float:
        """What a yes is worth: "price" (revenue), "margin" (profit) or "yes" (1: clicks)."""
        if kind == "price":
            return self.price
        if kind == "margin":
            return self.margin if self.margin is not None else self.price
        return 1.0

    @property
    def quick(self) -> bool:
        return "quick" in self.tags

    def as_json(self) -> dict[str, object]:
        return {
            "offer_id": self.offer_id,
            "name": self.name,
            "category": self.category,
            "price": self.price,
            "prep_s": self.prep_s,
            "dayparts": sorted(self.dayparts, key=DAYPARTS.index),
            "tags": sorted(self.tags),
        }


@dataclass(frozen=True, slots=True)
class Store:
    store_id: str
    name: str
    utc_offset_h: float = 0.0
    lanes: int = 1
    exclude: frozenset[str] = frozenset()

    def as_json(self) -> dict[str, object]:
        return {
            "store_id": self.store_id,
            "name": self.name,
            "utc_offset_h": self.utc_offset_h,
            "lanes": self.lanes,
            "exclude": sorted(self.exclude),
        }


@dataclass(frozen=True)
class Catalog:
    """The offers and stores, in catalog order (the order breaks ties deterministically)."""

    offers: Mapping[str, Offer]
    stores: Mapping[str, Store]
    _by_slot: dict[tuple[str, str], tuple[Offer, ...]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    @classmethod
    def of(cls, offers: Iterable[Offer], stores: Iterable[Store]) -> Catalog:
        return cls({o.offer_id: o for o in offers}, {s.store_id: s for s in stores})

    def available(self, store_id: str | None, daypart: str) -> tuple[Offer, ...]:
        """Offers this store sells in this daypart (every store's menu for an unknown store)."""
        key = (store_id or "", daypart)
        cached = self._by_slot.get(key)
        if cached is None:
            store = self.stores.get(store_id or "")
            excluded = store.exclude if store else frozenset()
            cached = tuple(
                o
                for o in self.offers.values()
                if daypart in o.dayparts and o.offer_id not in excluded
            )
            self._by_slot[key] = cached
        return cached
