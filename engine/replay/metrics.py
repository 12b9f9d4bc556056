"""Quality metrics for replays: pure functions over what a policy predicted and what happened.

Everything is computed exactly from the recorded numbers (no sampling), so a replay's
figures can be checked by hand and do not move between runs:

- `auc`, `logloss`: how well P(yes) separates and predicts the answers;
- `reliability`, `ece`: whether P(yes) means what it says (of the offers given 0.3, about
  30% answered yes), by bins of equal width;
- `hit_at_k`: whether the answered offer was among a policy's top k (ties shared fairly);
- `epsilon_greedy_probability`, `ips`, `snips`: off-policy estimates of a policy's reward
  from a log recorded by another policy with known propensities, with 95% intervals.

>>> auc([0, 1, 1, 0], [0.1, 0.8, 0.4, 0.3])
1.0
>>> round(logloss([1, 0], [0.8, 0.2]), 4)
0.2231
>>> ips([1.0, 0.0], [0.5, 0.5], [0.25, 0.5]).estimate  # (2 * 1 + 1 * 0) / 2
1.0
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

Z_95 = 1.959963984540054  # the two-sided 95% quantile of the standard normal


def auc(labels: Sequence[int | bool], scores: Sequence[float]) -> float | None:
    """The area under the ROC curve, exactly (Mann-Whitney U with average ranks for ties):
    the probability that a random yes scores above a random no, ties counting half.
    None when only one class occurs (the AUC is undefined).

    >>> auc([1, 0, 1, 0], [0.9, 0.9, 0.5, 0.1])  # pairs: (0.9>0.1) (0.9=0.9) (0.5>0.1) (0.5<0.9)
    0.625
    >>> auc([1, 1], [0.2, 0.3]) is None
    True
    """
    if len(labels) != len(scores):
        raise ValueError(f"{len(labels)} labels but {len(scores)} scores")
    order = sorted(range(len(scores)), key=lambda i: scores[i])
    ranks = [0.0] * len(scores)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and scores[order[j + 1]] == scores[order[i]]:
            j += 1
        average = (i + j) / 2 + 1  # 1-based average rank of the tied block
        for t in range(i, j + 1):
            ranks[order[t]] = average
        i = j + 1
    positives = sum(1 for y in labels if y)
    negatives = len(labels) - positives
    if positives == 0 or negatives == 0:
        return None
    rank_sum = math.fsum(r for r, y in zip(ranks, labels, strict=True) if y)
    return (rank_sum - positives * (positives + 1) / 2) / (positives * negatives)


def logloss(
    labels: Sequence[int | bool], probs: Sequence[float], eps: float = 1e-15
) -> float | None:
    """Mean negative log-likelihood of the answers under P(yes), probabilities clipped to
    [eps, 1 - eps] so one confident mistake costs a lot but not infinity. None if empty.

    >>> round(logloss([1, 0, 1], [0.5, 0.5, 0.5]), 6) == round(math.log(2), 6)
    True
    """
    if len(labels) != len(probs):
        raise ValueError(f"{len(labels)} labels but {len(probs)} probabilities")
    if not labels:
        return None
    total = math.fsum(
        -math.log(min(max(p, eps), 1 - eps)) if y else -math.log(1 - min(max(p, eps), 1 - eps))
        for y, p in zip(labels, probs, strict=True)
    )
    return total / len(labels)


CALIBRATION_BINS = 10


def reliability(
    labels: Sequence[int | bool], probs: Sequence[float], bins: int = CALIBRATION_BINS
) -> list[dict[str, float | int]]:
    """The reliability table: per bin of P(yes) ([0, 0.1), ..., [0.9, 1]) that holds any
    answer, how many, their mean P(yes) and the share that was a yes.

    >>> reliability([1, 0, 0, 1], [0.05, 0.05, 0.95, 0.95], bins=2)[1]
    {'bin': 1, 'n': 2, 'p_yes': 0.95, 'yes_rate': 0.5}
    """
    if len(labels) != len(probs):
        raise ValueError(f"{len(labels)} labels but {len(probs)} probabilities")
    p = np.asarray(probs, dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64)
    which = np.minimum((p * bins).astype(np.intp), bins - 1)
    table: list[dict[str, float | int]] = []
    for b in range(bins):
        mask = which == b
        n = int(mask.sum())
        if n:
            table.append(
                {
                    "bin": b,
                    "n": n,
                    "p_yes": round(float(p[mask].mean()), 6),
                    "yes_rate": round(float(y[mask].mean()), 6),
                }
            )
    return table


def ece(
    labels: Sequence[int | bool], probs: Sequence[float], bins: int = CALIBRATION_BINS
) -> float | None:
    """Expected calibration error: the answer-weighted mean gap between P(yes) and the
    yes-rate over the reliability table's bins (0 is perfectly calibrated). None if empty.

    >>> ece([1, 0, 0, 1], [0.05, 0.05, 0.95, 0.95], bins=2)
    0.45
    """
    table = reliability(labels, probs, bins)
    if not table:
        return None
    n = sum(row["n"] for row in table)
    gap = math.fsum(row["n"] * abs(row["p_yes"] - row["yes_rate"]) for row in table)
    return round(gap / n, 12)


def hit_at_k(scores: Sequence[float], target: int, k: int) -> float:
    """Whether candidate `target` is among the top `k` by score: 1.0 or 0.0, and with ties
    at the cut the expected hit of a random tie-break (so a policy that scores everything
    alike earns exactly chance, not the luck of the catalog order).

    >>> hit_at_k([0.9, 0.5, 0.1], target=1, k=2), hit_at_k([0.9, 0.5, 0.1], target=2, k=2)
    (1.0, 0.0)
    >>> hit_at_k([0.0, 0.0, 0.0, 0.0], target=3, k=1)  # four-way tie: 1 in 4
    0.25
    """
    if not 0 <= target < len(scores):
        raise IndexError(f"target {target} outside {len(scores)} candidates")
    values = np.asarray(scores, dtype=np.float64)  # a replay asks this of whole catalogs
    s = values[target]
    above = int(np.count_nonzero(values > s))
    tied = int(np.count_nonzero(values == s))  # includes the target
    if above >= k:
        return 0.0
    if above + tied <= k:
        return 1.0
    return (k - above) / tied


def epsilon_greedy_probability(scores: Sequence[float], chosen: int, epsilon: float) -> float:
    """pi(chosen | x) for an epsilon-greedy policy over these scores: with probability
    1 - epsilon the best offer (ties split evenly), else one uniformly at random.

    >>> round(epsilon_greedy_probability([0.2, 0.9, 0.1, 0.3], chosen=1, epsilon=0.2), 6)
    0.85
    >>> epsilon_greedy_probability([0.5, 0.5, 0.1, 0.1], chosen=0, epsilon=0.0)
    0.5
    """
    if not 0 <= chosen < len(scores):
        raise IndexError(f"chosen {chosen} outside {len(scores)} candidates")
    best = max(scores)
    ties = sum(1 for s in scores if s == best)
    greedy = (1 - epsilon) / ties if scores[chosen] == best else 0.0
    return greedy + epsilon / len(scores)


@dataclass(frozen=True, slots=True)
class Interval:
    """A point estimate with its 95% interval and how many terms it rests on."""

    estimate: float
    low: float
    high: float
    n: int

    def as_json(self, digits: int = 6) -> dict[str, float | int]:
        return {
            "estimate": round(self.estimate, digits),
            "low": round(self.low, digits),
            "high": round(self.high, digits),
            "n": self.n,
        }


def mean_interval(values: Sequence[float]) -> Interval:
    """The mean with a normal-approximation 95% interval (sample standard deviation).

    >>> mean_interval([1.0, 0.0, 1.0, 0.0]).estimate
    0.5
    """
    n = len(values)
    if n == 0:
        raise ValueError("no values")
    mean = math.fsum(values) / n
    if n == 1:
        return Interval(mean, mean, mean, 1)
    var = math.fsum((v - mean) ** 2 for v in values) / (n - 1)
    half = Z_95 * math.sqrt(var / n)
    return Interval(mean, mean - half, mean + half, n)


def _check_log(
    rewards: Sequence[float], target: Sequence[float], propensities: Sequence[float]
) -> None:
    if not len(rewards) == len(target) == len(propensities):
        raise ValueError("rewards, target probabilities and propensities differ in length")
    if not rewards:
        raise ValueError("an empty log")
    if any(p <= 0 for p in propensities):
        raise ValueError("every logged propensity must be > 0")


def ips(
    rewards: Sequence[float], target: Sequence[float], propensities: Sequence[float]
) -> Interval:
    """Inverse propensity scoring: the mean of pi(a|x) / mu(a|x) * r over the log, an
    unbiased estimate of the reward the target policy pi would have earned, with a
    normal 95% interval over the per-row terms.

    >>> v = ips([1, 0, 0, 1], target=[0.5, 1.0, 0.0, 0.25], propensities=[0.25, 0.5, 0.5, 0.5])
    >>> v.estimate  # (2 + 0 + 0 + 0.5) / 4
    0.625
    >>> ips([1, 0, 1], [0.3, 0.7, 0.2], [0.3, 0.7, 0.2]).estimate == 2 / 3  # pi = the logger
    True
    """
    _check_log(rewards, target, propensities)
    terms = [pi / mu * r for r, pi, mu in zip(rewards, target, propensities, strict=True)]
    return mean_interval(terms)


def snips(
    rewards: Sequence[float], target: Sequence[float], propensities: Sequence[float]
) -> Interval:
    """Self-normalized IPS: sum(w r) / sum(w) with w = pi/mu. Slightly biased, much less
    variable when weights are large; the 95% interval is the delta method's,
    var = mean((w (r - V))^2) / mean(w)^2 / n.

    >>> v = snips([1, 0, 0, 1], target=[0.5, 1.0, 0.0, 0.25], propensities=[0.25, 0.5, 0.5, 0.5])
    >>> v.estimate  # (2 + 0.5) / (2 + 2 + 0 + 0.5)
    0.5555555555555556
    """
    _check_log(rewards, target, propensities)
    weights = [pi / mu for pi, mu in zip(target, propensities, strict=True)]
    n = len(weights)
    total = math.fsum(weights)
    if total == 0:
        return Interval(0.0, 0.0, 0.0, n)  # the policy never takes a logged action
    value = math.fsum(w * r for w, r in zip(weights, rewards, strict=True)) / total
    mean_w = total / n
    spread = math.fsum((w * (r - value)) ** 2 for w, r in zip(weights, rewards, strict=True))
    half = Z_95 * math.sqrt(spread / (n - 1 if n > 1 else 1) / mean_w**2 / n)
    return Interval(value, value - half, value + half, n)


def doubly_robust(
    rewards: Sequence[float],
    target: Sequence[float],
    propensities: Sequence[float],
    modelled: Sequence[float],
    expected: Sequence[float],
) -> Interval:
    """Doubly robust: a reward model's value of the target policy corrected by IPS on the
    model's error, mean of q(x, pi) + pi/mu * (r - q(x, a)), where `modelled` is q(x, a)
    for the logged action and `expected` is the model's reward under the target policy,
    sum over actions of pi(b|x) q(x, b). Unbiased if either the propensities or the model
    are right, and less variable than IPS when the model is good.

    >>> v = doubly_robust([1, 0], [0.5, 0.5], [0.5, 0.5], modelled=[1, 0], expected=[0.7, 0.3])
    >>> round(v.estimate, 6)  # a perfect model: the IPS correction is zero
    0.5
    """
    _check_log(rewards, target, propensities)
    if not len(modelled) == len(expected) == len(rewards):
        raise ValueError("one modelled and one expected reward per row")
    terms = [
        q_pi + pi / mu * (r - q)
        for r, pi, mu, q, q_pi in zip(
            rewards, target, propensities, modelled, expected, strict=True
        )
    ]
    return mean_interval(terms)
