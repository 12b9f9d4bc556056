"""`tailor api`: the HTTP API, stateless, any number of replicas behind a load balancer.

Reads decisions from Redis and produces events, store context and commands to Kafka; no
model work. `app` builds the FastAPI app from settings (`create_app`), `auth` checks
write keys, `gatekeeper` limits bodies and records request metrics, `board_page` serves
the drive-thru menu board page and its `static/` assets.

May import `config`, `models` and `engine.wire`; never `engine.worker`, `engine.sim`,
`engine.dev` or `engine.replay`.
"""
