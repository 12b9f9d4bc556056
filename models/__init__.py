"""Tailor's learning and decision core: pure Python on River, no I/O, deterministic with a seed.

Each concept has its module: `offer` (catalog), `context` (the touchpoint's situation),
`answer` (what a reaction teaches), `customer` (one customer's own model), `trending`
(decayed popularity), `policy` (scoring, rules, exploration, reasons).
"""
