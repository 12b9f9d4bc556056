"""What a reaction teaches: the event types and the answer each one gives."""

from __future__ import annotations

from typing import Literal

EventType = Literal["impression", "click", "add_to_cart", "purchase", "dismiss"]
EVENT_TYPES: tuple[EventType, ...] = ("impression", "click", "add_to_cart", "purchase", "dismiss")
YES: frozenset[str] = frozenset({"click", "add_to_cart", "purchase"})
NO: frozenset[str] = frozenset({"dismiss"})

# How strongly each reaction says yes: a purchase is worth more than a click.
STRENGTH: dict[str, float] = {"click": 0.5, "add_to_cart": 0.75, "purchase": 1.0, "dismiss": 1.0}


def answer_of(event_type: str) -> bool | None:
    """True for a yes, False for a no, None for a question (an impression)."""
    if event_type in YES:
        return True
    if event_type in NO:
        return False
    return None
