"""The `tailor` command: one subcommand per process role, each wiring pieces and no logic."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from config.settings import SettingsError, get_settings
from engine.dev.stack import StackError

DESCRIPTION = """\
Tailor: streaming real-time personalization. Interactions flow through Kafka to a Faust
worker that learns each customer's preferences online and writes next-best offers to
Redis, served over HTTP.

Settings come from TAILOR_* environment variables (see README, "Configuration").
"""

EXAMPLES = """\
examples:
  tailor demo                      everything: Kafka, Redis, worker, API, simulator
  tailor stack up                  start local Kafka (KRaft) and Redis, wait until healthy
  tailor worker                    run the Faust worker (learning, trending, boards)
  tailor api --port 8080           serve the HTTP API
  tailor simulate --rate 50        drive-thru and web traffic against the API
  tailor replay coupon --data ../shared/data   the engine vs baselines on a dataset
  tailor decisions export --out served.jsonl   what was served and answered, for
  tailor replay decisions --data served.jsonl  ... each policy's value off-policy
  tailor token customer c-1 --ttl 3600         a token reading c-1's offers for an hour
"""


def _stack(args: argparse.Namespace) -> int:
    from engine.dev.stack import Stack

    stack = Stack(get_settings())
    if args.action == "up":
        statuses = stack.up()
    elif args.action == "down":
        statuses = stack.down()
    else:
        statuses = stack.status()
    for s in statuses:
        pid = f" pid {s.pid}" if s.pid else ""
        print(f"{s.name:<6} {s.state:<11} {s.address}{pid}")
    return 0


def _worker(args: argparse.Namespace) -> int:
    from engine.worker.main import run

    return run(get_settings(), args.loglevel)


def _api(args: argparse.Namespace) -> int:
    import uvicorn

    from engine.api.app import create_app

    settings = get_settings()
    host, port = args.host or settings.api_host, args.port or settings.api_port
    print(f"tailor api: http://{host}:{port}  (docs at /docs)", flush=True)
    uvicorn.run(create_app(settings), host=host, port=port, log_level=args.loglevel)
    return 0


def _simulate(args: argparse.Namespace) -> int:
    from engine.sim.simulate import run

    return run(args)


def _replay(args: argparse.Namespace) -> int:
    from engine.replay.main import main

    return main(args)


def _export(args: argparse.Namespace) -> int:
    from config.catalog import load_catalog
    from engine.replay.served_log import main

    settings = get_settings()
    return main(settings.kafka, load_catalog(settings.catalog), args.out)


def _token(args: argparse.Namespace) -> int:
    from engine.api.tokens import MAX_TTL_S, mint
    from engine.wire.events import ID_RULE, id_problem

    secret = get_settings().token_secret
    if secret is None:
        raise SettingsError(
            "TAILOR_TOKEN_SECRET is not set: the API verifies customer tokens with it, so "
            "set the same secret (32 or more characters) here and on the API"
        )
    if problem := id_problem(args.customer_id):
        raise SettingsError(f"customer id {problem}; {ID_RULE}")
    if not 1 <= args.ttl <= MAX_TTL_S:
        raise SettingsError(f"--ttl: 1 to {MAX_TTL_S} seconds (got {args.ttl})")
    print(mint(secret.get_secret_value(), args.customer_id, args.ttl))
    return 0


def _demo(args: argparse.Namespace) -> int:
    from engine.dev.demo import run

    return run(get_settings(), rate=args.rate, duration=args.duration)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="tailor",
        description=DESCRIPTION,
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    stack = sub.add_parser("stack", help="local Kafka (KRaft) and Redis: up, down, status")
    stack.add_argument("action", choices=["up", "down", "status"])
    stack.set_defaults(func=_stack)

    worker = sub.add_parser("worker", help="the Faust worker: learning, trending, boards")
    worker.add_argument("--loglevel", default="info", choices=["debug", "info", "warning"])
    worker.set_defaults(func=_worker)

    api = sub.add_parser("api", help="the HTTP API (reads Redis, produces to Kafka)")
    api.add_argument("--host", help="bind address (default TAILOR_API_HOST, 127.0.0.1)")
    api.add_argument("--port", type=int, help="port (default TAILOR_API_PORT, 8080)")
    api.add_argument("--loglevel", default="warning", choices=["debug", "info", "warning"])
    api.set_defaults(func=_api)

    simulate = sub.add_parser("simulate", help="simulated drive-thru and web customers")
    from engine.sim.simulate import add_arguments

    add_arguments(simulate)
    simulate.set_defaults(func=_simulate)

    # Options inline: importing engine.replay (scikit-learn) would slow every command.
    replay = sub.add_parser(
        "replay", help="stream a dataset through the models, test-then-train, vs baselines"
    )
    replay.add_argument(
        "source", choices=["interactions", "coupon", "open-bandit", "simulator", "decisions"]
    )
    replay.add_argument(
        "--data",
        type=Path,
        help="the CSV (interactions), the dataset's file or folder or the shared data folder "
        "(coupon, open-bandit), a catalog TOML (simulator, optional), or a JSON-lines log "
        "of served decisions and their answers (decisions)",
    )
    replay.add_argument(
        "--catalog",
        type=Path,
        help="decisions: the catalog that served the log (default: the project's)",
    )
    replay.add_argument("--json", action="store_true", help="print one JSON object")
    replay.add_argument("--limit", type=int, help="at most N events (simulator: visits, 20000)")
    replay.add_argument("--seed", type=int, default=7, help="seed (default 7)")
    replay.set_defaults(func=_replay)

    decisions = sub.add_parser("decisions", help="the served-decisions log, from Kafka")
    decisions_sub = decisions.add_subparsers(dest="action", required=True, metavar="ACTION")
    export = decisions_sub.add_parser(
        "export",
        help="what the API served and its answers, as JSON lines for `tailor replay decisions`",
    )
    export.add_argument("--out", type=Path, required=True, help="the JSON-lines file to write")
    export.set_defaults(func=_export)

    token = sub.add_parser("token", help="mint a signed token (TAILOR_TOKEN_SECRET)")
    token_sub = token.add_subparsers(dest="kind", required=True, metavar="KIND")
    customer = token_sub.add_parser(
        "customer",
        help="a token that reads one customer's offers, for a website to hand its browser",
    )
    customer.add_argument("customer_id", help="the customer the token reads for")
    customer.add_argument("--ttl", type=int, default=3600, help="seconds it lives (default 3600)")
    customer.set_defaults(func=_token)

    demo = sub.add_parser("demo", help="stack + worker + API + simulator, Ctrl-C stops all")
    demo.add_argument("--rate", type=float, default=20.0, help="simulated visits per second")
    demo.add_argument("--duration", type=float, default=None, help="seconds (default: forever)")
    demo.set_defaults(func=_demo)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)  # else a line per request
    try:
        return int(args.func(args))
    except SettingsError as exc:
        print(f"tailor: {exc}", file=sys.stderr)
        return 2
    except StackError as exc:
        print(f"tailor: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
