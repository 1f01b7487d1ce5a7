"""reasoning_gym adapter: questions and scorer of any dataset, with model text screened and scoring isolated."""

from __future__ import annotations

import sys
import time

import pytest

from skillfactory.tasks import TaskParamError, get_task
from skillfactory.tasks.reasoning_gym import screen_answer
from skillfactory.tasks.sandbox import TIMEOUT, ScoringWorker


@pytest.mark.parametrize("answer,gold", [
    ("__import__('os').getpid()", "42"), ("9**9**9", "42"), ("open('/tmp/x', 'w')", "42"), ("1e5", "42"),
    ("2 ** 10", "42"), ("99!", "42"), ("1 << 99999999", "42"), ("x" * 400, "42"),
    ("getattr(1, 'real')", "cat"), ("(lambda: 1)()", "cat"), ("().__class__", "cat"), ("[f][0](1)", "cat"),
    ("eval ('1')", "cat"), ("a\x00b", "cat"), ("x**2", "x + 1"), ("import os", "cat"), ("lambda: 0", "cat"),
    ("x**99**9", "x**2 + 1"), ("(x+1)**99", "x**2 + 1"), ("x**999", "x**2 + 1"), ("x ** 2 ** 3", "x**2"),
])
def test_screen_rejects(answer, gold):
    assert screen_answer(answer, gold) is not None


@pytest.mark.parametrize("answer,gold", [
    ("-12", "42"), ("3 * (4 + 5)", "42"), ("1.5", "2.5"), ("hello world", "olleh"),
    ("apple, banana, cherry", "cherry, apple"), ("x**2 + 3*x", "x**3 - 1"), ("sin(x) + C", "-cos(x) + C"),
    ("_ Q _\n_ _ Q", "_ Q _\nQ _ _"), ("important, imports", "imports, important"),
])
def test_screen_allows_plain_answers(answer, gold):
    assert screen_answer(answer, gold) is None


def test_code_in_answers_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    task = get_task("reasoning_gym", dataset="spiral_matrix", isolate=False)  # its scorer calls eval()
    q = task.generate(1, seed=0)[0]
    for payload in [f"open({str(marker)!r}, 'w')", f"[open({str(marker)!r}, 'w')]",
                    f"__import__('pathlib').Path({str(marker)!r}).touch()"]:
        assert task.check(q, f"<answer>{payload}</answer>").reason == "screened"
    assert not marker.exists()
    assert task.verify(q, f"<answer>{q.gold}</answer>")


def test_threshold_and_reasons():
    strict = get_task("reasoning_gym", dataset="countdown", config={"min_numbers": 3, "max_numbers": 3},
                      isolate=False)
    q = strict.generate(1, seed=0)[0]
    assert strict.verify(q, f"<answer>{q.gold}</answer>")
    res = strict.check(q, "<answer>1 + 1</answer>")  # well formed but wrong: reasoning-gym scores it 0.05
    assert res.reason == "wrong_value" and "0.05" in res.detail
    lenient = get_task("reasoning_gym", dataset="countdown", config={"min_numbers": 3, "max_numbers": 3},
                       threshold=0.05, isolate=False)
    assert lenient.verify(q, "<answer>1 + 1</answer>")


def test_entry_rebuilt_from_index():
    task = get_task("reasoning_gym", dataset="products", isolate=False)
    q = task.generate(1, seed=3)[0]
    bare = q.model_copy(update={"metadata": {}})
    assert task.entry(bare) == q.metadata["entry"]
    assert task.verify(bare, f"<answer>{q.gold}</answer>")


def test_bad_params():
    with pytest.raises(TaskParamError, match="did you mean"):
        get_task("reasoning_gym", dataset="basic_arithmetc")
    with pytest.raises(TaskParamError, match="config"):
        get_task("reasoning_gym", dataset="basic_arithmetic", config={"no_such_option": 1})
    with pytest.raises(TaskParamError, match="threshold"):
        get_task("reasoning_gym", dataset="products", threshold=0)


def test_isolated_scoring_and_timeout():
    task = get_task("reasoning_gym", dataset="countdown", config={"min_numbers": 3, "max_numbers": 3},
                    timeout_s=3.0)  # isolate=True: scored in a child process
    q = task.generate(1, seed=0)[0]
    assert task.verify(q, f"<answer>{q.gold}</answer>")
    assert task.check(q, "<answer>1 + 2</answer>").reason == "wrong_value"
    # Bypass the screen on purpose: sympy's parse_expr really does hang on this. The child is killed.
    worker = ScoringWorker("countdown", {"min_numbers": 3, "max_numbers": 3}, timeout_s=3.0)
    try:
        t0 = time.monotonic()
        assert worker.score("9**9**9", q.metadata["entry"]) == TIMEOUT
        assert time.monotonic() - t0 < 60
        assert worker.score(q.gold, q.metadata["entry"]) == 1.0  # restarted on the next call
    finally:
        worker.close()


@pytest.mark.skipif(sys.platform != "linux", reason="worker processes are forked on Linux only")
def test_a_forked_copy_scores_through_a_scoring_child_of_its_own():
    """The trace builder's forked workers hold the task: they must not share the parent's scoring pipes, where
    two processes' requests and scores would interleave."""
    from skillfactory.traces.parallel import ordered_map

    task = get_task("reasoning_gym", dataset="countdown", config={"min_numbers": 3, "max_numbers": 3},
                    timeout_s=10.0)
    qs = task.generate(4, seed=1)
    assert task.verify(qs[0], f"<answer>{qs[0].gold}</answer>")  # the parent's scoring child is running now
    parent_child = task._worker._proc.pid
    jobs = [(q, good) for q in qs for good in (True, False)]
    got = list(ordered_map(_score_in_copy, jobs, state=(task,), workers=2))  # the task reaches them by fork
    assert [ok for ok, _ in got] == [good for _, good in jobs]
    assert parent_child not in {pid for _, pid in got}  # each copy started its own
    assert task._worker._proc.pid == parent_child and task._worker._proc.poll() is None  # the parent's lives on
    assert task.verify(qs[1], f"<answer>{qs[1].gold}</answer>")


def _score_in_copy(task, job):
    q, good = job
    ok = task.verify(q, f"<answer>{q.gold if good else '1 + 2'}</answer>")
    return ok, task._worker._proc.pid
