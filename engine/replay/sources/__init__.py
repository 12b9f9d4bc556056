"""One module per replay source, each reading its data and replaying it:

- `interactions`: any CSV of customer_id, offer_id, timestamp, reward (+ context columns);
  hit@10 among offers the customer has not said yes to before, AUC and log loss of P(yes).
- `coupon`: the UCI in-vehicle coupon survey in file order; AUC and log loss on the final
  20% of the stream, beside an offline gradient-boosting reference trained on the first 80%.
- `open_bandit`: the Open Bandit "Men" random log; IPS and SNIPS estimates (95% intervals)
  of each policy's click rate, and the check that the logger's estimate is the logged CTR.
- `simulator`: engine/sim/world.py's customers, whose true P(yes) is known; each policy
  shows offers, the world answers; reward per visit and the share of an oracle's reward.

`files` reads the CSV files they share the handling of.
"""
