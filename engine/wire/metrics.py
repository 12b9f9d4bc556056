"""Prometheus metrics, all prefixed `tailor_`, in the default registry of each process."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.parser import text_string_to_metric_families

EVENTS = Counter(
    "tailor_events", "Interactions consumed by the worker, by type and outcome", ["type", "outcome"]
)
DEAD_LETTERS = Counter("tailor_dead_letters", "Events sent to the dead-letter topic", ["reason"])
BATCH_SECONDS = Histogram(
    "tailor_batch_seconds",
    "Time to process one batch of interactions (validate, learn, decide, write)",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
FRESHNESS_SECONDS = Histogram(
    "tailor_decision_freshness_seconds",
    "From an event entering Kafka (its record timestamp) to its customer's decision in Redis",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
QUESTIONS = Counter(
    "tailor_questions", "Impressions (questions asked), by holdout group", ["group"]
)
ANSWERS = Counter(
    "tailor_answers",
    "Answers learned: yes or no, what said so (event type or window), holdout group",
    ["answer", "source", "group"],
)
DECISIONS = Counter("tailor_decisions_written", "Decisions written to Redis", ["kind"])
REDIS_ERRORS = Counter("tailor_redis_errors", "Redis operations that failed", ["op"])
RETRIES = Counter(
    "tailor_retries", "Writes retried after a Redis or Kafka failure (backpressure)", ["what"]
)
TIMER_ERRORS = Counter("tailor_timer_errors", "Timer ticks that failed (tried again)", ["timer"])
DUPLICATES = Counter(
    "tailor_duplicates",
    "Records not applied again: a replay after a crash or rebalance, or a resent event_id",
    ["kind"],
)
GAPS = Counter(
    "tailor_offset_holes",
    "Records the consumer skipped: read again (reread), or taken as a real gap (accepted)",
    ["agent", "outcome"],
)
STALLED = Gauge(
    "tailor_stalled_partitions",
    "Partitions whose records have waited STALL_S (15 s) or more with nothing committed",
    ["agent"],
)
CROWD_ANSWERS = Gauge(
    "tailor_crowd_answers",
    "Answers the crowd model this worker decides with has learned (every worker's)",
)
CUSTOMERS = Gauge("tailor_customers_with_model", "Customers with a model on this worker")
STORE_CONTEXTS = Counter("tailor_store_context_updates", "Store context updates consumed")

API_REQUESTS = Counter(
    "tailor_api_requests", "HTTP requests by route and status", ["method", "route", "status"]
)
# Fine around the serving target (p99 <= 2 ms), coarse in the tail.
API_BUCKETS = (
    0.00025, 0.0005, 0.001, 0.0015, 0.002, 0.0025, 0.003, 0.004, 0.005,
    0.01, 0.025, 0.05, 0.1, 0.25, 1,
)  # fmt: skip
API_SECONDS = Histogram(
    "tailor_api_request_seconds",
    "HTTP request latency by route and status",
    ["method", "route", "status"],
    buckets=API_BUCKETS,
)
FORGET_REQUESTS = Counter("tailor_forget_requests", "Customers the API was asked to forget")
SESSIONS_MERGED = Counter(
    "tailor_sessions_merged", "Anonymous sessions merged into a known customer"
)
FORGOTTEN = Counter("tailor_customers_forgotten", "Customers whose model the worker deleted")
API_EVENTS = Counter("tailor_api_events", "Events accepted or refused by the API", ["outcome"])
OFFERS_SOURCE = Counter(
    "tailor_api_offers",
    "Customer offers served, by source: tailored at request time, the stored decision "
    "(no shelf for the store yet, or an unreadable one), the store's board, global favourites",
    ["source"],
)


def totals(metrics_text: str) -> dict[str, float]:
    """Each tailor_* sample of a /metrics page, summed over its labels (for live lines and
    benchmarks that read a running process from outside)."""
    summed: dict[str, float] = {}
    for family in text_string_to_metric_families(metrics_text):
        for sample in family.samples:
            if sample.name.startswith("tailor_"):
                summed[sample.name] = summed.get(sample.name, 0.0) + sample.value
    return summed


SERVED = Counter("tailor_served", "Decisions served and logged to tailor.decisions", ["kind"])
SERVED_DROPPED = Counter(
    "tailor_served_dropped", "Served decisions not logged to tailor.decisions (Kafka away, busy)"
)
