"""The report as a readable table: a row per policy, a column per figure, then the
reference figures, flattened.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict) and "estimate" in value:
        return f"{value['estimate']:.4f} [{value['low']:.4f}, {value['high']:.4f}]"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def _flatten(prefix: str, value: Any) -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict) and "estimate" not in value:
        for k, v in value.items():
            yield from _flatten(f"{prefix}.{k}" if prefix else str(k), v)
    else:
        yield prefix, value


def format_report(report: Mapping[str, Any]) -> str:
    """A readable table: a row per policy, a column per figure, then the reference."""
    policies: Mapping[str, Mapping[str, Any]] = report["policies"]
    # Reliability tables are in the JSON (--json); the table keeps one figure per cell.
    columns = [
        k
        for k in dict.fromkeys(k for m in policies.values() for k in m)
        if not k.startswith("reliability")
    ]
    rows = [["policy", *columns]]
    rows += [[name, *(_cell(m.get(c)) for c in columns)] for name, m in policies.items()]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [f"tailor replay {report['source']}: {report['events']} events", ""]
    for j, r in enumerate(rows):
        lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
        if j == 0:
            lines.append("  ".join("-" * w for w in widths))
    lines += ["", "reference:"]
    lines += [f"  {k}: {_cell(v)}" for k, v in _flatten("", report["reference"])]
    return "\n".join(lines)
