"""How long `tailor replay interactions` takes on a log the size of a real one.

The issue's yardstick is a 100,000-rating log with about 1,700 items (MovieLens 100k's
shape), which this machine does not have. Without `--data`, a seeded log of that shape is
written to a temporary file: 943 customers with Zipf-distributed activity, 1,682 offers
with Zipf popularity, tastes from 8-dimensional latent factors, about 44% of ratings a
yes, timestamps over seven months in order. With `--data`, any interactions CSV is timed.

The replay runs as the CLI runs it (a child process, every baseline), so the figure is
what a user waits for; a popularity-only pass over the same file (read, rank, count) is
timed beside it in the same run.

    .venv/bin/python -m benchmarks.replay_speed [--data CSV] [--events 100000] [--json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.logs import ratings_log
from engine.replay.sources.interactions import read_interactions

SHAPE = {"events": 100_000, "offers": 1_682, "customers": 943}


def popularity_pass(path: Path) -> float:
    """Seconds to read the log and, per event, rank the top 10 by yes-counts so far and
    count it: the cheapest recommender over the same file, as a floor."""
    t0 = time.perf_counter()
    events, catalog = read_interactions(path)
    index = {offer_id: i for i, offer_id in enumerate(catalog.offers)}
    yes = np.zeros(len(index))
    hits = Counter[bool]()
    for e in events:
        i = index[e.offer.offer_id]
        top = np.argpartition(-yes, 10)[:10] if len(yes) > 10 else np.arange(len(yes))
        if e.reward > 0:
            hits[bool((top == i).any())] += 1
            yes[i] += 1
    return time.perf_counter() - t0


def replay_cli(path: Path, limit: int | None) -> tuple[float, dict[str, Any]]:
    """Seconds `tailor replay interactions --data path --json` takes, and its report."""
    cmd = [sys.executable, "-m", "engine.cli", "replay", "interactions", "--data", str(path)]
    cmd += ["--json"] + (["--limit", str(limit)] if limit else [])
    t0 = time.perf_counter()
    done = subprocess.run(cmd, stdout=subprocess.PIPE, check=False)  # progress: stderr
    seconds = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"replay failed (exit {done.returncode}); its stderr is above")
    report: dict[str, Any] = json.loads(done.stdout)
    return seconds, report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.replay_speed", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--data", type=Path, help="an interactions CSV (default: a seeded log)")
    parser.add_argument("--events", type=int, default=SHAPE["events"], help="seeded log size")
    parser.add_argument("--limit", type=int, help="replay only the first N events")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        path = args.data
        if path is None:
            path = Path(tmp) / "log.csv"
            ratings_log(path, args.events, SHAPE["offers"], SHAPE["customers"])
            print(f"wrote a seeded log of {args.events:,} events to {path}", file=sys.stderr)
        events, catalog = read_interactions(path)
        n = min(len(events), args.limit or len(events))
        print(f"replaying {n:,} events over {len(catalog.offers):,} offers ...", file=sys.stderr)
        seconds, report = replay_cli(path, args.limit)
        floor = popularity_pass(path)
    result = {
        "data": str(args.data) if args.data else f"seeded ML-100k-shaped log ({args.events:,})",
        "events": n,
        "offers": len(catalog.offers),
        "replay_s": round(seconds, 1),
        "replay_events_per_s": round(n / seconds, 1),
        "popularity_pass_s": round(floor, 1),
        "policies": sorted(report.get("policies", report)),
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"tailor replay interactions: {n:,} events x {len(catalog.offers):,} offers in "
            f"{seconds:.1f} s ({n / seconds:,.0f} events/s, every baseline); "
            f"a popularity-only pass over the same file: {floor:.1f} s"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
