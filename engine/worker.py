"""`tailor worker`: the Faust worker that runs every agent. Wiring only, no logic."""

from __future__ import annotations

import logging


def run(loglevel: str = "info") -> int:
    import faust

    from engine import interactions, stores  # noqa: F401 - registers the agents
    from engine.app import app, settings

    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    worker = faust.Worker(app, loglevel=loglevel, quiet=True)
    print(
        f"tailor worker: kafka {settings.kafka}, redis {settings.redis}, "
        f"metrics http://127.0.0.1:{settings.worker_web_port}/metrics",
        flush=True,
    )
    worker.execute_from_commandline()  # returns on SIGINT/SIGTERM after a clean stop
    return 0
