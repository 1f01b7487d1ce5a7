"""verl reward functions backed by skillfactory's task verifiers (imported by the exported ``reward.py``).

verl calls ``compute_score(data_source, solution_str, ground_truth, extra_info)`` once per response (its
``naive`` reward manager) or a batch variant once per batch (the ``batch`` manager of older verl). The question
the verifier needs (numbers, target, ...) travels in ``extra_info["question"]`` as Question JSON; ``solution_str``
is the response only, so the last ``<answer>`` in it is what gets verified - the same rule as our TRL reward.
"""

from __future__ import annotations

from typing import Any

from skillfactory.training.rewards import VerifierReward

_REWARD = VerifierReward()


def _question(extra_info: Any) -> Any:
    if not isinstance(extra_info, dict) or not extra_info.get("question"):
        raise ValueError("skillfactory reward: extra_info['question'] is missing; use the parquet files written by "
                         "`skillfactory export verl`")
    return extra_info["question"]


def compute_score(data_source: str, solution_str: str, ground_truth: str, extra_info: dict | None = None,
                  **_: Any) -> float:
    """1.0 when the response's last <answer> verifies for the question in ``extra_info``, else 0.0."""
    return _REWARD.score(_question(extra_info), solution_str)


def compute_score_batch(data_sources: list[str], solution_strs: list[str], ground_truths: list[str],
                        extra_infos: list[dict | None], **_: Any) -> list[float]:
    """Batch form for verl's ``batch`` reward manager: one score per response, in order."""
    return [_REWARD.score(_question(e), s) for s, e in zip(solution_strs, extra_infos, strict=True)]
