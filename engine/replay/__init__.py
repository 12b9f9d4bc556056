"""`tailor replay`: offline evaluation. Streams a dataset through the same `models/` code,
test-then-train (each event is predicted or ranked before any policy learns it), beside
baselines computed in the same run on the same stream.

Reads dataset files by path (an interactions CSV, the in-vehicle coupon survey, the Open
Bandit logs) or runs the simulated world; writes the report to stdout (a table or one JSON
object) and progress to stderr. Nothing else: no Kafka, no Redis.

- `main`: the CLI entry (`main(args)`), `replay()` and where each source's data is found;
- `sources`: one module per source (`interactions`, `coupon`, `open_bandit`, `simulator`),
  each reading its data and replaying it;
- `loop`: the event, the one test-then-train loop, the policies every replay compares;
- `tasks`: what is measured around each event; `actors`: policies acting in the simulator;
- `metrics`: AUC, log loss, hit@k, IPS and SNIPS; `baselines`: the baseline policies;
- `report`: the table.

May import `config`, `models` and `engine.sim`; never imported by `engine.worker` or
`engine.api`. Importing this package loads nothing: scikit-learn, numpy and tqdm are
imported only where they are used.
"""
