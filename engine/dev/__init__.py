"""The local development stack and demo, behind `tailor stack` and `tailor demo`.

- `stack`: `Stack` starts, checks and stops one Kafka (KRaft) and one Redis from a state
  dir, built from `kafka` (the broker from the Maven jars), `redis` (``redis-server``)
  and `servers` (detached processes, pid files, /proc identity, readiness);
- `processes`: child processes of Tailor's own roles (`tailor worker`, `tailor api`);
- `prometheus`: Debian's ``prometheus``, detached like the servers, scraping the API and
  every worker from a generated config;
- `demo`: the whole loop on one machine: stack, worker, API, Prometheus and simulator.

Reads settings passed in by the caller; writes pid files, logs and data under
``settings.state_dir``, and runs servers and child processes. Used by the CLI, tests and
benchmarks; may import `config`, `models`, `engine.wire` and `engine.sim`; never imported
by `engine.worker` or `engine.api`. Importing any module here has no side effects.
"""
