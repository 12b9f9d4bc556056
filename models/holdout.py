"""Holdout: a stable share of customers gets the control policy, so lift can be measured.

The group is a pure function of the customer id (a keyed hash), so every worker and
every restart agrees, and no assignment needs storing.

>>> group_of("c-1", share=0.0), group_of("c-1", share=1.0)
('engine', 'control')
>>> group_of("c-1", 0.2) == group_of("c-1", 0.2)
True
"""

from __future__ import annotations

import hashlib
from typing import Literal

Group = Literal["engine", "control"]


def group_of(customer_id: str, share: float, salt: str = "tailor-holdout") -> Group:
    """'control' for about `share` of all customers, the same ones every time."""
    digest = hashlib.blake2b(customer_id.encode(), key=salt.encode(), digest_size=8).digest()
    position = int.from_bytes(digest, "big") / 2**64  # uniform in [0, 1)
    return "control" if position < share else "engine"
