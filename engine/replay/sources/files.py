"""Reading a dataset's CSV files: rows, the header, the needed columns, timestamps."""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

from engine.replay.loop import ReplayError


def read_rows(path: Path) -> Iterator[dict[str, str]]:
    """CSV rows as dicts (any line endings, an optional BOM); a short row is refused."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            for row in reader:
                if None in row.values():
                    raise ReplayError(
                        f"{path}:{reader.line_num}: {sum(v is not None for v in row.values())}"
                        f" fields, the header has {len(reader.fieldnames or ())}"
                    )
                yield row
    except OSError as exc:
        raise ReplayError(f"cannot read {path}: {exc.strerror or exc}") from None


def require_columns(path: Path, header: Sequence[str] | None, needed: Iterable[str]) -> None:
    missing = [c for c in needed if c not in (header or ())]
    if missing:
        raise ReplayError(f"{path}: missing column(s) {missing}; found {list(header or [])}")


def read_header(path: Path) -> list[str]:
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            return next(csv.reader(f), [])
    except OSError as exc:
        raise ReplayError(f"cannot read {path}: {exc.strerror or exc}") from None


def parse_timestamp(text: str) -> float:
    """Epoch seconds, or ISO 8601 (naive times are UTC), as epoch seconds.

    >>> parse_timestamp("86400"), parse_timestamp("1970-01-02T00:00:00Z")
    (86400.0, 86400.0)
    """
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        pass
    when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()


def is_number(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False
