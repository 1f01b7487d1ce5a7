"""Accuracy with 95% intervals, and the unbiased pass@k estimator.

Why a *clustered* interval: an evaluation draws several samples per question, and samples of one question are
correlated (an easy question is solved by most of its samples). A binomial interval over all samples would
pretend there are ``questions x samples`` independent trials and come out too narrow. The default interval is
therefore a percentile bootstrap that resamples **questions** (with all their samples), seeded so the same
results give the same interval. The Wilson score interval over samples is kept for one sample per question
(where both agree up to bootstrap noise) and for users who want the textbook figure.

pass@k is the unbiased estimator of Chen et al. (2021): for a question with ``n`` samples of which ``c`` are
correct, ``pass@k = 1 - C(n-c, k) / C(n, k)``, averaged over questions.

    >>> round(pass_at_k(n=4, c=1, k=2), 4)    # 1 - C(3,2)/C(4,2) = 1 - 3/6
    0.5
    >>> tuple(round(x, 4) for x in wilson_interval(8, 10))
    (0.4902, 0.9433)
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence

Z95 = 1.959963984540054  # two-sided 95% normal quantile


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k for one question: probability that at least one of ``k`` samples drawn without
    replacement from the ``n`` generated (``c`` correct) is correct. Raises ValueError when k > n."""
    if not 0 <= c <= n:
        raise ValueError(f"pass_at_k: need 0 <= c <= n, got c={c}, n={n}")
    if not 1 <= k <= n:
        raise ValueError(f"pass_at_k: need 1 <= k <= n, got k={k}, n={n}")
    if n - c < k:
        return 1.0
    # 1 - prod_{i=n-c+1}^{n} (1 - k/i): the numerically stable form of 1 - C(n-c,k)/C(n,k)
    prod = 1.0
    for i in range(n - c + 1, n + 1):
        prod *= 1.0 - k / i
    return 1.0 - prod


def mean_pass_at_k(counts: Sequence[tuple[int, int]], k: int) -> float | None:
    """Mean pass@k over questions given ``(n, c)`` per question; None when some question has fewer than k
    samples (the estimator is undefined there)."""
    if not counts or any(n < k for n, _ in counts):
        return None
    return sum(pass_at_k(n, c, k) for n, c in counts) / len(counts)


def default_ks(samples_per_question: int) -> list[int]:
    """1, 2, 4, 8, ... up to the number of samples per question (and that number itself)."""
    ks, k = [], 1
    while k <= samples_per_question:
        ks.append(k)
        k *= 2
    if samples_per_question >= 1 and ks[-1] != samples_per_question:
        ks.append(samples_per_question)
    return ks


def wilson_interval(successes: int, trials: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion; (0, 1) when there are no trials."""
    if trials <= 0:
        return (0.0, 1.0)
    p = successes / trials
    denom = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denom
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def percentile(sorted_vals: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (numpy's default method) of an already sorted list."""
    pos = (len(sorted_vals) - 1) * q
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_vals) - 1)
    return sorted_vals[lo] + (sorted_vals[hi] - sorted_vals[lo]) * (pos - lo)


def cluster_bootstrap_interval(
    clusters: Sequence[tuple[int, int]], *, resamples: int = 2000, seed: int = 0, level: float = 0.95
) -> tuple[float, float]:
    """Percentile bootstrap interval of pooled accuracy, resampling clusters (questions).

    ``clusters`` holds ``(correct, total)`` per question. Each resample draws as many questions as there are,
    with replacement, and takes ``sum(correct) / sum(total)``. Deterministic given ``seed``.
    """
    if not clusters:
        return (0.0, 1.0)
    rng = random.Random(seed)
    m = len(clusters)
    stats = []
    for _ in range(resamples):
        c = t = 0
        for _ in range(m):
            ci, ti = clusters[rng.randrange(m)]
            c += ci
            t += ti
        stats.append(c / t if t else 0.0)
    stats.sort()
    alpha = (1 - level) / 2
    return (percentile(stats, alpha), percentile(stats, 1 - alpha))


def paired_bootstrap_difference(
    a: Mapping[str, tuple[int, int]],
    b: Mapping[str, tuple[int, int]],
    *,
    resamples: int = 2000,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[float, tuple[float, float], int] | None:
    """Accuracy difference ``a - b`` with a paired bootstrap interval over the questions both share.

    ``a`` and ``b`` map question id -> (correct, total). Pairing matters: two models evaluated on the same
    questions differ much less than two independent estimates would suggest. Returns (difference, interval,
    number of shared questions), or None when they share no question.
    """
    shared = sorted(set(a) & set(b))
    if not shared:
        return None

    def acc(ids: Sequence[str], side: Mapping[str, tuple[int, int]]) -> float:
        c = sum(side[q][0] for q in ids)
        t = sum(side[q][1] for q in ids)
        return c / t if t else 0.0

    diff = acc(shared, a) - acc(shared, b)
    rng = random.Random(seed)
    stats = []
    for _ in range(resamples):
        ids = [shared[rng.randrange(len(shared))] for _ in shared]
        stats.append(acc(ids, a) - acc(ids, b))
    stats.sort()
    alpha = (1 - level) / 2
    return diff, (percentile(stats, alpha), percentile(stats, 1 - alpha)), len(shared)


def accuracy_summary(
    clusters: Sequence[tuple[int, int]], *, method: str = "bootstrap", resamples: int = 2000, seed: int = 0
) -> dict[str, object]:
    """Pooled accuracy over samples with its 95% interval (``method``: "bootstrap" over questions or "wilson"
    over samples)."""
    correct = sum(c for c, _ in clusters)
    total = sum(t for _, t in clusters)
    if method == "wilson":
        lo, hi = wilson_interval(correct, total)
    elif method == "bootstrap":
        lo, hi = cluster_bootstrap_interval(clusters, resamples=resamples, seed=seed)
    else:
        raise ValueError(f"unknown interval method {method!r}; expected 'bootstrap' or 'wilson'")
    return {"accuracy": correct / total if total else 0.0, "ci": [lo, hi], "correct": correct, "n": total}


__all__ = [
    "Z95", "accuracy_summary", "cluster_bootstrap_interval", "default_ks", "mean_pass_at_k",
    "paired_bootstrap_difference", "pass_at_k", "wilson_interval",
]
