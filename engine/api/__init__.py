"""`tailor api`: the HTTP API, stateless, any number of replicas behind a load balancer.

Reads decisions from Redis and produces events, store context and commands to Kafka; no
learning. `app` builds the FastAPI app from settings (`create_app`), `offers` tailors a
customer's offers at request time from their taste and the store's shelf, `auth` checks
write keys, `gatekeeper` limits bodies, answers a bug with a JSON 500 and records request
metrics, `errors` makes every other error JSON (503 when Redis or Kafka is away),
`producer` bounds every write to Kafka, `health` probes both servers for /healthz, `lanes`
answers a lane's board (personal while a loyalty scan is current), `board_page` serves the
drive-thru menu board page and its `static/` assets, and `ops_page` the operations page,
whose charts `ops_series` asks Prometheus for.

May import `config`, `models` and `engine.wire`; never `engine.worker`, `engine.sim`,
`engine.dev` or `engine.replay`.
"""
