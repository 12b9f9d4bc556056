"""`tailor worker`: the Faust worker. Every agent, table and timer of the stream runs here.

Data flow (one module per stage):
    tailor.interactions (key customer) ─► `interactions`: validate, learn, decide
        ├─► Redis tailor:offers:{customer} + tailor.decisions (audit, off-policy evaluation)
        ├─► tailor.dead-letter (`dead_letter`: refused records, with reason)
        └─► tailor.store-answers (key store) ─► `stores`: trending
    tailor.store-context (key store) ─► `stores`: context ─► Redis tailor:board:{store}
    `questions`: a timer turns unanswered questions into no's
    `commands`: forget, handover, merge, ordered with the customer's events

`app` builds the Faust app, its topics and tables from settings (`build`); `main` runs it.
Reads Kafka and Redis, writes both. May import `config`, `models` and `engine.wire`;
never `engine.api`, `engine.sim`, `engine.dev` or `engine.replay`.
"""
