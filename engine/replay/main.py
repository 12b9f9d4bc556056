"""`tailor replay`: stream a dataset through the same `models/` code, test-then-train, and
measure the engine beside baselines computed in the same run on the same stream.

`main` is the CLI's entry (the report on stdout, progress on stderr); `replay` runs one
source (engine/replay/sources/) on the file or folder `resolve` finds for it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from engine.replay.loop import DEFAULT_SEED, ReplayError
from engine.replay.report import format_report
from engine.replay.sources.coupon import COUPON_FILE, replay_coupon
from engine.replay.sources.decisions import replay_decisions
from engine.replay.sources.interactions import replay_interactions
from engine.replay.sources.open_bandit import replay_open_bandit
from engine.replay.sources.simulator import replay_simulator

SOURCES = ("interactions", "coupon", "open-bandit", "simulator", "decisions")


def resolve(source: str, data: Path | None) -> Path | None:
    """The file or folder a source reads, from what --data names: the file itself, its
    folder, or the shared data folder holding it."""
    if source == "simulator":
        return data if data is not None and data.is_file() else None
    if data is None:
        raise ReplayError(f"replay {source} needs --data PATH")
    if source in ("interactions", "decisions"):
        if not data.is_file():
            raise ReplayError(f"{data}: not a file")
        return data
    if source == "coupon":
        for candidate in (data, data / COUPON_FILE, data / "in-vehicle-coupon" / COUPON_FILE):
            if candidate.is_file():
                return candidate
        raise ReplayError(f"{data}: no {COUPON_FILE} there (nor in in-vehicle-coupon/)")
    if source == "open-bandit":
        for candidate in (data, data / "open-bandit-men"):
            if (candidate / "random.csv").is_file():
                return candidate
        raise ReplayError(f"{data}: no random.csv there (nor in open-bandit-men/)")
    raise ReplayError(f"unknown source {source!r}; one of {', '.join(SOURCES)}")


def replay(
    source: str,
    data: Path | None,
    *,
    limit: int | None = None,
    seed: int = DEFAULT_SEED,
    progress: bool = False,
    catalog: Path | None = None,
) -> dict[str, Any]:
    """Replay one source; the report is JSON-able: source, events, policies, reference."""
    if limit is not None and limit < 1:
        raise ReplayError(f"--limit must be >= 1, got {limit}")
    path = resolve(source, data)
    if source == "simulator":
        return replay_simulator(path, limit=limit, seed=seed, progress=progress)
    assert path is not None
    if source == "interactions":
        return replay_interactions(path, limit=limit, seed=seed, progress=progress)
    if source == "coupon":
        return replay_coupon(path, limit=limit, seed=seed, progress=progress)
    if source == "decisions":
        from config.catalog import CatalogError, load_catalog

        try:
            served = load_catalog(catalog)
        except CatalogError as exc:
            raise ReplayError(str(exc)) from None
        return replay_decisions(path, served, limit=limit, seed=seed, progress=progress)
    return replay_open_bandit(path, limit=limit, seed=seed, progress=progress)


def main(args: argparse.Namespace) -> int:
    """`tailor replay`: the report on stdout (JSON or a table), progress on stderr."""
    try:
        report = replay(
            args.source,
            args.data,
            limit=args.limit,
            seed=args.seed,
            progress=True,
            catalog=getattr(args, "catalog", None),
        )
    except ReplayError as exc:
        print(f"tailor replay: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(report, allow_nan=False))
    else:
        print(format_report(report))
    return 0
