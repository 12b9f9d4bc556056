"""The situation a touchpoint happens in: daypart, weather, temperature, the queue, the channel."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from models.offer import DAYPARTS

HOT_AT_C = 24.0
COLD_AT_C = 12.0
PEAK_QUEUE = 5
_HOT_WEATHER = frozenset({"hot", "heatwave"})
_COLD_WEATHER = frozenset({"snow", "cold", "freezing"})


def daypart_at(ts: float, utc_offset_h: float = 0.0) -> str:
    """The daypart of a UNIX time at a store `utc_offset_h` hours from UTC."""
    hour = datetime.fromtimestamp(ts + utc_offset_h * 3600, tz=UTC).hour
    if 5 <= hour < 11:
        return DAYPARTS[0]
    if 11 <= hour < 14:
        return DAYPARTS[1]
    if 14 <= hour < 17:
        return DAYPARTS[2]
    if 17 <= hour < 21:
        return DAYPARTS[3]
    return DAYPARTS[4]


@dataclass(frozen=True, slots=True)
class Context:
    daypart: str
    weather: str | None = None
    temperature_c: float | None = None
    queue_length: int | None = None
    channel: str | None = None
    store_id: str | None = None
    # The slot an offer was shown in (0 first), on what an answer is learned in: the crowd
    # learns position bias from it, and decisions, made for no slot, are neutral to it.
    slot: int | None = None
    # Any other features of the touchpoint (a dataset's columns): strings are categories,
    # numbers are scaled by the caller to about [-1, 1].
    extra: Mapping[str, str | float] = field(default_factory=dict)

    def features(self) -> dict[str, str | float]:
        """What the shared model sees of the context: categories and numbers, no Nones."""
        out: dict[str, str | float] = {"daypart": self.daypart, "thermal": self.thermal}
        if self.weather:
            out["weather"] = self.weather
        if self.channel:
            out["channel"] = self.channel
        if self.store_id:
            out["store"] = self.store_id
        if self.queue_length is not None:
            out["lane"] = "peak" if self.peak else "calm"
        if self.temperature_c is not None:
            out["temp"] = max(-1.0, min(1.0, (self.temperature_c - 18.0) / 15.0))
        out.update(self.extra)
        return out

    @property
    def thermal(self) -> str:
        """'hot', 'cold' or 'mild': what the weather makes people crave."""
        t = self.temperature_c
        if (t is not None and t >= HOT_AT_C) or self.weather in _HOT_WEATHER:
            return "hot"
        if (t is not None and t <= COLD_AT_C) or self.weather in _COLD_WEATHER:
            return "cold"
        return "mild"

    @property
    def peak(self) -> bool:
        return self.queue_length is not None and self.queue_length >= PEAK_QUEUE

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Context:
        """The inverse of `as_json`: known fields by name, any other key an extra."""
        known = {k: raw[k] for k in _FIELDS if k in raw}
        extra = {k: v for k, v in raw.items() if k not in _FIELDS}
        return cls(**known, extra=extra)

    def as_json(self) -> dict[str, object]:
        out: dict[str, object] = {
            "daypart": self.daypart,
            "weather": self.weather,
            "temperature_c": self.temperature_c,
            "queue_length": self.queue_length,
            "channel": self.channel,
            "store_id": self.store_id,
            **self.extra,
        }
        if self.slot is not None:
            out["slot"] = self.slot
        return out


_FIELDS = ("daypart", "weather", "temperature_c", "queue_length", "channel", "store_id", "slot")
