"""The simulator behind `tailor simulate`: a simulated world and the HTTP client that
drives the API with it.

- `world`: `World`, pure and seeded, who turns up (`Visit`) and how they answer
  (`Answer`), from `weather` (the clock, each store's weather, temperature and queue) and
  `customers` (the population, their hidden tastes and the oracle `p_yes`);
- `simulate`: the run loop and its CLI (`run`, `add_arguments`), over `driver` (the HTTP
  requests, back-off and the run's `SimSummary`) and `payloads` (the events' JSON).

Reads the catalog from the API and writes events and store context to it over HTTP;
nothing else (no Kafka, no Redis, no files). May import `config` and `models`; never
imported by `engine.worker` or `engine.api` (the demo, replay, tests and benchmarks use
it). Importing any module here has no side effects.
"""
