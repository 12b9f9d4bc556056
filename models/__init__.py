"""Tailor's learning and decision core: pure Python and numpy, no I/O, deterministic with a seed.

Each concept has its module: `offer` (catalog), `context` (the touchpoint's situation),
`answer` (what a reaction teaches), `residual` (River's logistic regression update, on a
dict), `shared` (the crowd), `customer` (one customer's own model), `trending` (decayed
popularity), `policy` (scoring, rules, exploration, reasons), `scoring` (a menu scored
as vectors), `candidates` (which offers of a large menu are scored exactly), `learner`.
"""
