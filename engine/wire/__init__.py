"""What the worker and the API share: the contracts on the wire.

- `events`: the JSON schema of interactions and store context, validated once, here.
- `topics`: Kafka topic names and their creation.
- `serving`: the Redis serving store and its keys (`tailor:offers:{customer}`, ...).
- `metrics`: the Prometheus metrics both processes expose.

Runs in both processes; may import `config` and `models`, never `engine.worker`,
`engine.api`, `engine.sim`, `engine.dev` or `engine.replay`.
"""
