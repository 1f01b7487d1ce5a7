"""Metrics against hand-computed numbers and closed forms."""

from __future__ import annotations

import itertools
import math
import random

import pytest

from skillfactory.evaluation.metrics import (
    accuracy_summary,
    cluster_bootstrap_interval,
    default_ks,
    mean_pass_at_k,
    paired_bootstrap_difference,
    pass_at_k,
    wilson_interval,
)


@pytest.mark.parametrize("n,c,k", [(n, c, k) for n in range(1, 11) for c in range(0, n + 1) for k in range(1, n + 1)])
def test_pass_at_k_equals_closed_form(n, c, k):
    closed = 1 - math.comb(n - c, k) / math.comb(n, k)
    assert pass_at_k(n, c, k) == pytest.approx(closed, abs=1e-12)


def test_pass_at_k_by_enumeration():
    # 5 samples, correct ones at positions 1 and 3: count the k-subsets that hold a correct one
    correct = [0, 1, 0, 1, 0]
    for k in range(1, 6):
        subsets = list(itertools.combinations(range(5), k))
        hits = sum(any(correct[i] for i in s) for s in subsets)
        assert pass_at_k(5, 2, k) == pytest.approx(hits / len(subsets))


def test_pass_at_k_hand_values_and_errors():
    assert pass_at_k(4, 1, 2) == pytest.approx(0.5)  # 1 - C(3,2)/C(4,2) = 1 - 3/6
    assert pass_at_k(4, 0, 4) == 0.0
    assert pass_at_k(4, 1, 4) == 1.0
    assert pass_at_k(64, 16, 1) == pytest.approx(0.25)  # pass@1 is the mean accuracy
    with pytest.raises(ValueError):
        pass_at_k(3, 1, 4)
    with pytest.raises(ValueError):
        pass_at_k(3, 4, 1)
    # mean over questions: (1 - C(2,2)/C(4,2)) and 1 - 0 -> (5/6 + 1) / 2
    assert mean_pass_at_k([(4, 2), (4, 4)], 2) == pytest.approx((5 / 6 + 1) / 2)
    assert mean_pass_at_k([(4, 2), (1, 1)], 2) is None


def test_default_ks():
    assert default_ks(1) == [1]
    assert default_ks(4) == [1, 2, 4]
    assert default_ks(6) == [1, 2, 4, 6]


def test_wilson_hand_values():
    lo, hi = wilson_interval(8, 10)
    assert (round(lo, 4), round(hi, 4)) == (0.4902, 0.9433)
    lo, hi = wilson_interval(0, 20)
    assert lo == 0.0 and hi == pytest.approx(0.16113, abs=1e-5)
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_bootstrap_degenerate_and_deterministic():
    # every question has the same accuracy -> no spread to resample
    assert cluster_bootstrap_interval([(2, 4)] * 10) == (0.5, 0.5)
    clusters = [(random.Random(i).randint(0, 4), 4) for i in range(30)]
    assert cluster_bootstrap_interval(clusters, seed=3) == cluster_bootstrap_interval(clusters, seed=3)
    lo, hi = cluster_bootstrap_interval(clusters, seed=3)
    acc = sum(c for c, _ in clusters) / 120
    assert lo < acc < hi


def test_bootstrap_matches_binomial_width_for_one_sample_per_question():
    # 400 independent samples, 120 correct: the bootstrap interval ~ the normal approximation
    clusters = [(1, 1)] * 120 + [(0, 1)] * 280
    lo, hi = cluster_bootstrap_interval(clusters, resamples=4000, seed=0)
    half = 1.96 * math.sqrt(0.3 * 0.7 / 400)
    assert (hi - lo) / 2 == pytest.approx(half, rel=0.12)


def test_bootstrap_is_wider_than_wilson_when_samples_cluster():
    # 20 questions x 8 samples, each question all-right or all-wrong: effectively 20 trials, not 160
    clusters = [(8, 8)] * 10 + [(0, 8)] * 10
    blo, bhi = cluster_bootstrap_interval(clusters, seed=1)
    wlo, whi = wilson_interval(80, 160)
    assert bhi - blo > 1.8 * (whi - wlo)


def test_accuracy_summary_methods():
    s = accuracy_summary([(3, 4), (1, 4)], method="wilson")
    assert s["accuracy"] == 0.5 and s["n"] == 8 and s["correct"] == 4
    assert s["ci"] == list(wilson_interval(4, 8))
    with pytest.raises(ValueError):
        accuracy_summary([(1, 1)], method="nope")


def test_paired_difference():
    a = {"q1": (4, 4), "q2": (2, 4), "q3": (0, 4)}
    b = {"q1": (2, 4), "q2": (2, 4), "q3": (0, 4), "q9": (4, 4)}
    diff, (lo, hi), n = paired_bootstrap_difference(a, b, seed=0)
    assert n == 3 and diff == pytest.approx((6 - 4) / 12)
    assert lo <= diff <= hi and lo >= 0.0  # a is never worse on any question
    assert paired_bootstrap_difference({"x": (1, 1)}, {"y": (1, 1)}) is None
