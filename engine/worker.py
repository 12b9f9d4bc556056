"""`tailor worker`: the Faust worker that runs every agent. Wiring only, no logic."""

from __future__ import annotations

import logging


def run(loglevel: str = "info") -> int:
    import asyncio

    import faust

    from engine import interactions, stores  # noqa: F401 - registers the agents
    from engine.app import app, settings
    from engine.topics import ensure_topics

    # Topics and changelogs exist, with their partition counts, before Faust starts.
    # A private loop: asyncio.run would leave none current for Faust's worker.
    loop = asyncio.new_event_loop()
    loop.run_until_complete(ensure_topics(settings, with_changelogs=True))
    loop.close()

    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    worker = faust.Worker(app, loglevel=loglevel, quiet=True)
    print(
        f"tailor worker: kafka {settings.kafka}, redis {settings.redis}, "
        f"metrics http://127.0.0.1:{settings.worker_web_port}/metrics",
        flush=True,
    )
    worker.execute_from_commandline()  # returns on SIGINT/SIGTERM after a clean stop
    return 0
