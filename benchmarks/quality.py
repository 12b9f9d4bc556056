"""Learning quality: every replay source, every policy, one markdown table for the README.

    python -m benchmarks.quality --data ../shared/data [--limit N] [--seed 7] [--dev] [--json]

Runs `tailor replay` on the coupon survey, the Open Bandit random log, the simulator, and
an interactions CSV that the simulator logs on the fly under a uniformly random policy (in
a temporary file; datasets are read where they are, never copied). Prints the table, the
references, the targets (met or not) and the wall time of each source; `--json` prints
all of it as one JSON object instead.

`--dev` adds the development logs (`benchmarks.logs`, seeded, written to a temporary
file): the logs the engine's hyperparameters are chosen on. Figures are reported on the
others, never tuned on them.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from benchmarks.logs import baskets_log, ratings_log
from engine.replay.loop import DEFAULT_SEED
from engine.replay.main import replay
from engine.replay.sources.decisions import replay_decisions
from engine.replay.sources.simulator import (
    SIM_VISITS,
    WorldPolicy,
    write_simulated_decisions,
    write_simulated_interactions,
)

DECISION_VISITS = 10_000

# The development logs: (name, writer); ratings as MovieLens 100k's first 20,000 events.
DEV_LOGS: tuple[tuple[str, Callable[[Path], None]], ...] = (
    ("dev ratings (by popularity)", lambda p: ratings_log(p, 20_000, 1_682, 943, seed=1)),
    ("dev ratings (by taste)", lambda p: ratings_log(p, 20_000, 1_682, 943, seed=2, taste=1.5)),
    ("dev baskets", lambda p: baskets_log(p, 9_000, seed=3)),
    ("dev baskets (anonymous)", lambda p: baskets_log(p, 9_000, seed=3, anonymous=True)),
)

Report = dict[str, Any]
COLUMNS: tuple[tuple[str, str, str], ...] = (
    # (header, source, metric)
    ("coupon AUC (final 20%)", "coupon", "auc"),
    ("coupon log loss", "coupon", "logloss"),
    ("coupon ECE", "coupon", "ece"),
    ("open-bandit IPS CTR [95%]", "open-bandit", "ips"),
    ("open-bandit SNIPS CTR", "open-bandit", "snips"),
    ("simulator reward/visit", "simulator", "reward_per_event"),
    ("simulator oracle share", "simulator", "oracle_share"),
    ("simulator ECE (shown offers)", "simulator", "ece"),
    ("interactions hit@10 (new offers)", "interactions", "hit_at_10"),
    ("interactions hit@10 (all offers)", "interactions", "hit_at_10_all"),
    ("interactions AUC", "interactions", "auc"),
    ("interactions ECE", "interactions", "ece"),
)


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, dict):
        return (
            f"{100 * value['estimate']:.2f}% [{100 * value['low']:.2f}, {100 * value['high']:.2f}]"
        )
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def _get(reports: Mapping[str, Report], source: str, policy: str, metric: str) -> Any:
    return reports.get(source, {}).get("policies", {}).get(policy, {}).get(metric)


def table(reports: Mapping[str, Report]) -> str:
    """Markdown: a row per policy (and the references), a column per figure."""
    policies = list(
        dict.fromkeys(p for s, r in reports.items() if s != "decisions" for p in r["policies"])
    )
    head = ["policy", *(c[0] for c in COLUMNS)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for policy in policies:
        cells = [_fmt(_get(reports, s, policy, m)) for _, s, m in COLUMNS]
        lines.append(f"| {policy} | " + " | ".join(cells) + " |")
    refs: dict[str, dict[str, Any]] = {"reference": {}}
    ref = refs["reference"]
    if "coupon" in reports and "gbm" in reports["coupon"]["reference"]:
        gbm = reports["coupon"]["reference"]["gbm"]
        ref["coupon AUC (final 20%)"], ref["coupon log loss"] = gbm["auc"], gbm["logloss"]
    if "open-bandit" in reports:
        check = reports["open-bandit"]["reference"]["logger_check"]
        ref["open-bandit IPS CTR [95%]"] = reports["open-bandit"]["reference"]["logged_ctr"]
        ref["open-bandit SNIPS CTR"] = f"{100 * check['snips_of_logger']:.2f}%"
    if "simulator" in reports:
        ref["simulator reward/visit"] = reports["simulator"]["reference"]["oracle"][
            "reward_per_event"
        ]
        ref["simulator oracle share"] = 1.0
    cells = [_fmt(ref.get(c[0])) for c in COLUMNS]
    lines.append("| reference: offline GBM / logged CTR / oracle | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def targets(reports: Mapping[str, Report]) -> list[str]:
    """The quality targets of the issue, each with the figures seen and met or not."""
    out = []

    def check(what: str, ok: bool | None, seen: str) -> None:
        mark = "n/a" if ok is None else ("met" if ok else "NOT met")
        out.append(f"- {what}: {seen} -> {mark}")

    def fig(source: str, policy: str, metric: str) -> float | None:
        value = _get(reports, source, policy, metric)
        return value if isinstance(value, float) else None

    share = fig("simulator", "engine", "oracle_share")
    check(
        "simulator: engine oracle_share >= 0.90",
        None if share is None else share >= 0.9,
        f"{_fmt(share)}",
    )
    random_share = fig("simulator", "random", "oracle_share")
    check(
        "simulator: random oracle_share <= 0.60 (the world separates policies)",
        None if random_share is None else random_share <= 0.6,
        f"{_fmt(random_share)}",
    )
    engine, popular = (fig("simulator", p, "reward_per_event") for p in ("engine", "popularity"))
    ratio = engine / popular if engine is not None and popular else None
    check(
        "simulator: engine reward/visit >= 1.3 x popularity's",
        None if ratio is None else ratio >= 1.3,
        f"{_fmt(ratio)} x",
    )
    auc = fig("coupon", "engine", "auc")
    gbm = reports.get("coupon", {}).get("reference", {}).get("gbm", {}).get("auc")
    ratio = auc / gbm if auc is not None and gbm else None
    check(
        "coupon: engine AUC >= 0.95 x offline GBM's",
        None if ratio is None else ratio >= 0.95,
        f"{_fmt(auc)} / {_fmt(gbm)} = {_fmt(ratio)}",
    )
    truth = reports.get("decisions", {}).get("reference", {}).get("true_value", {})
    for policy, value in truth.items():
        est = reports["decisions"]["policies"][policy]
        for e in ("ips", "dr", "snips"):  # SNIPS is biased (consistent): reported, no target
            inside = est[e]["low"] <= value <= est[e]["high"]
            check(
                f"decisions: the {policy} policy's true value in the {e.upper()} 95% interval",
                inside if e != "snips" else None,
                f"true {value:.3f}; {e} {est[e]['estimate']:.3f} "
                f"[{est[e]['low']:.3f}, {est[e]['high']:.3f}]" + ("" if inside else " (outside)"),
            )
    hits = {
        p: fig("interactions", p, "hit_at_10")
        for p in reports.get("interactions", {}).get("policies", {})
    }
    mine = hits.pop("engine", None)
    others = [v for v in hits.values() if v is not None]
    check(
        "interactions: engine hit@10 above every baseline (engine_shared_only included)",
        None if mine is None or not others else mine > max(others),
        f"{_fmt(mine)} vs best other {_fmt(max(others) if others else None)}",
    )
    return out


def run(
    data: Path, limit: int | None, seed: int, say: Callable[[str], None]
) -> tuple[dict[str, Report], dict[str, float]]:
    """Every source, timed; a source whose data is missing is skipped with a note."""
    reports: dict[str, Report] = {}
    seconds: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="tailor-quality-") as tmp:
        jobs: list[tuple[str, Path | None]] = [
            ("coupon", data),
            ("open-bandit", data),
            ("simulator", None),
        ]
        log = Path(tmp) / "simulated-interactions.csv"
        started = time.perf_counter()
        rows = write_simulated_interactions(log, limit or SIM_VISITS, seed)
        say(
            f"quality | simulated interactions log: {rows} rows in "
            f"{time.perf_counter() - started:.1f} s"
        )
        jobs.append(("interactions", log))
        for source, path in jobs:
            started = time.perf_counter()
            try:
                reports[source] = replay(
                    source,
                    path,
                    limit=None if source == "interactions" else limit,
                    seed=seed,
                    progress=True,
                )
            except ValueError as exc:
                say(f"quality | {source}: skipped ({exc})")
                continue
            seconds[source] = time.perf_counter() - started
            say(
                f"quality | {source}: {reports[source]['events']} events in {seconds[source]:.1f} s"
            )
        started = time.perf_counter()
        reports["decisions"] = served(Path(tmp) / "served.jsonl", limit or DECISION_VISITS, seed)
        seconds["decisions"] = time.perf_counter() - started
        say(f"quality | decisions: {reports['decisions']['events']} events in "
            f"{seconds['decisions']:.1f} s")  # fmt: skip
    return reports, seconds


def served(path: Path, visits: int, seed: int) -> Report:
    """`tailor replay decisions` on a served log the simulator writes (the engine exploring
    at 0.3, one offer per visit), with the known policy beside the others, whose true value
    on those visits goes into the reference: the check of the estimators."""
    from config.catalog import load_catalog

    world, truth = write_simulated_decisions(path, visits, seed, explore=0.3)
    report = replay_decisions(path, load_catalog(), seed=seed, extra={"known": WorldPolicy(world)})
    report["reference"]["true_value"] = {"known": truth["known"], "random": truth["uniform"]}
    return report


def served_table(report: Report) -> str:
    """Markdown: each policy's value per visit estimated from the served log, beside the
    true value of the policies whose value is known."""
    truth = report["reference"].get("true_value", {})
    lines = [
        "| policy (served log) | IPS [95%] | SNIPS [95%] | DR [95%] | true value |",
        "|---|---|---|---|---|",
    ]
    for name, est in report["policies"].items():
        cells = [
            f"{est[e]['estimate']:.3f} [{est[e]['low']:.3f}, {est[e]['high']:.3f}]"
            for e in ("ips", "snips", "dr")
        ]
        true = f"{truth[name]:.3f}" if name in truth else "-"
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {true} |")
    return "\n".join(lines)


def reliability_table(reports: Mapping[str, Report], policy: str = "engine") -> str:
    """Markdown: the policy's reliability table per source (P(yes) bins of 0.1): how many
    answers, their mean P(yes), the share that was a yes."""
    lines = [
        f"| {policy}: P(yes) bin | "
        + " | ".join(f"{s} n / P(yes) / yes-rate" for s in reports)
        + " |",
        "|---" * (len(reports) + 1) + "|",
    ]
    rows = {
        s: {r["bin"]: r for r in _get(reports, s, policy, "reliability") or []} for s in reports
    }
    for b in range(10):
        cells = []
        for source in reports:
            r = rows[source].get(b)
            cells.append(f"{r['n']} / {r['p_yes']:.3f} / {r['yes_rate']:.3f}" if r else "-")
        lines.append(f"| {b / 10:.1f}-{(b + 1) / 10:.1f} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def dev_table(seed: int, say: Callable[[str], None]) -> tuple[str, dict[str, Report]]:
    """hit@10 (new offers) of every policy on each development log, as a markdown table."""
    reports: dict[str, Report] = {}
    with tempfile.TemporaryDirectory(prefix="tailor-dev-") as tmp:
        for name, write in DEV_LOGS:
            path = Path(tmp) / "log.csv"
            write(path)
            started = time.perf_counter()
            reports[name] = replay("interactions", path, seed=seed, progress=True)
            say(f"quality | {name}: {reports[name]['events']} events in "
                f"{time.perf_counter() - started:.1f} s")  # fmt: skip
    names = list(next(iter(reports.values()))["policies"])
    lines = [
        "| development log (hit@10, new offers) | " + " | ".join(names) + " |",
        "|---" * (len(names) + 1) + "|",
    ]
    for log, report in reports.items():
        cells = [_fmt(report["policies"][n]["hit_at_10"]) for n in names]
        lines.append(f"| {log} | " + " | ".join(cells) + " |")
    return "\n".join(lines), reports


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.quality",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--data",
        type=Path,
        default=Path("../shared/data"),
        help="the shared data folder (default ../shared/data)",
    )
    parser.add_argument(
        "--limit",
        type=int,
        default=None,
        help=f"at most N events per source (simulator visits: {SIM_VISITS})",
    )
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--dev", action="store_true", help="also the development logs")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)

    def say(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    reports, seconds = run(args.data, args.limit, args.seed, say)
    dev, dev_reports = dev_table(args.seed, say) if args.dev else ("", {})
    if args.json:
        out = {"reports": reports, "seconds": seconds, "targets": targets(reports)}
        print(json.dumps({**out, "development": dev_reports} if args.dev else out))
        return 0
    print(table(reports))
    print()
    for source, report in reports.items():
        print(f"- {source}: {report['events']} events, {seconds[source]:.1f} s")
    if "open-bandit" in reports:
        ref = reports["open-bandit"]["reference"]
        check = ref["logger_check"]
        print(
            f"- open-bandit: IPS of the logging policy {check['ips_of_logger']:.6f} = logged "
            f"CTR {check['logged_ctr']:.6f}: {check['reproduces_logged_ctr']}; "
            f"{ref['caution']}"
        )
    print()
    print("Targets:")
    print("\n".join(targets(reports)))
    if "decisions" in reports:
        print()
        print(served_table(reports["decisions"]))
    calibrated = {s: r for s, r in reports.items() if _get(reports, s, "engine", "reliability")}
    if calibrated:
        print()
        print(reliability_table(calibrated))
    if dev:
        print()
        print(dev)
    return 0


if __name__ == "__main__":
    sys.exit(main())
