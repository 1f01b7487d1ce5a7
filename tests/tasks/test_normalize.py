"""The shared answer normaliser: presentation wrappers come off, every verdict is otherwise unchanged."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from skillfactory.records import Question
from skillfactory.tasks import get_task, list_tasks
from skillfactory.tasks.normalize import MAX_ROUNDS, normalize_answer

PARAMS = {"reasoning_gym": {"dataset": "basic_arithmetic", "isolate": False}}

# (marker that must not already be inside, wrap) - the markdown / LaTeX ways instruct models dress an answer up
WRAPPERS = [
    ("**", lambda s: f"**{s}**"), ("*", lambda s: f"*{s}*"), ("__", lambda s: f"__{s}__"),
    ("`", lambda s: f"`{s}`"), ("`", lambda s: f"```{s}```"), ("$", lambda s: f"${s}$"),
    ("$", lambda s: f"$ {s} $"), ("$$", lambda s: f"$${s}$$"), ("\\(", lambda s: f"\\({s}\\)"),
    ("\\[", lambda s: f"\\[ {s} \\]"), (None, lambda s: f"\\boxed{{{s}}}"), (None, lambda s: f"\\boxed {{ {s} }}"),
    (None, lambda s: f"\\text{{{s}}}"), (None, lambda s: f"\\textbf{{{s}}}"), (None, lambda s: f"\\fbox{{{s}}}"),
    (".", lambda s: f"{s}."), (".", lambda s: f"{s} ."),
]


def wrap(s: str, choices: list[int]) -> str:
    """``s`` wrapped in the chosen wrappers, inside out, skipping any that markdown/LaTeX would not read as
    one span around ``s`` (its marker already inside, or a period after a period); spaces around the whole."""
    for c in choices:
        marker, fn = WRAPPERS[c]
        if marker == "." and s.rstrip().endswith("."):
            continue
        if marker not in (None, ".") and marker in s:
            continue
        if marker == "__" and s.isidentifier():
            continue
        s = fn(s)
    return f"  {s}\n"


LAYERS = st.lists(st.integers(0, len(WRAPPERS) - 1), min_size=1, max_size=MAX_ROUNDS // 2)


@pytest.mark.parametrize("text,want", [
    ("<answer>", "<answer>"), ("177546", "177546"), ("**177546**", "177546"), ("\\boxed{177546}", "177546"),
    ("$177546$", "177546"), ("177546.", "177546"), ("$\\boxed{177546}$", "177546"), ("**\\boxed{12}**", "12"),
    ("$\\boxed{\\text{garden}}$.", "garden"), ("***7***", "7"), ("\\boxed{\\frac{3}{4}}", "\\frac{3}{4}"),
    ("\\(57 + 22 - 15 = 64\\)", "57 + 22 - 15 = 64"), ("1.5", "1.5"), ("1.5.", "1.5"),
])
def test_examples(text, want):
    assert normalize_answer(text) == want


@pytest.mark.parametrize("text", [
    "$177546", "177546$", "**177546", "177546**", "\\boxed{177546", "\\boxed{1}+\\boxed{2}", "$1$ + $2$",
    "**1** or **2**", "* * *", "** 5**", "__import__", "__init__", "The answer is \\boxed{5}", "177546..", "**",
    "$$", "\\boxed{}", "`", "\\(5\\) and \\(6\\)", "9**9**9", "\\unknown{5}", "_ Q _",
])
def test_unbalanced_or_partial_wrappers_stay(text):
    assert normalize_answer(text) == text.strip()


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["177546", "1,234,567", "-12", "57 + 22 - 15", "(3 * 5) + 7 = 22", "garden", "3/4",
                        "Step 1: 15 - 22 = -7\nStep 2: 57 - -7 = 64", "x**2 + 1", "1.5"]), LAYERS)
def test_wrapped_plain_answers_come_back(plain, layers):
    assert normalize_answer(wrap(plain, layers)) == plain


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40), LAYERS)
def test_never_raises_and_bounded(text, layers):
    out = normalize_answer(wrap(text, layers))
    assert isinstance(out, str) and len(out) <= len(wrap(text, layers))


def test_layers_are_single_spans_and_bounded():
    assert normalize_answer("**" * 5000 + "7" + "**" * 5000) != "7"  # each layer must be one balanced span
    deep = "7"
    for _ in range(MAX_ROUNDS + 3):
        deep = f"\\boxed{{{deep}}}"
    assert normalize_answer(deep) != "7"  # the unwrapping loop is bounded


# ---- every task: wrapping changes no verdict, the gold verifies in any dress ---------------------------------
@pytest.fixture(scope="module", params=list_tasks())
def task_and_questions(request):
    task = get_task(request.param, **PARAMS.get(request.param, {}))
    return task, task.generate(12, seed=5)


def _answers(questions: list[Question]) -> list[str]:
    """Candidate answers: the golds (right for one question, mostly wrong for the others) and near misses."""
    out = [q.gold for q in questions]
    for g in list(out):
        digits = [i for i, c in enumerate(g) if c.isdigit()]
        if digits:
            i = digits[-1]
            out.append(g[:i] + str((int(g[i]) + 1) % 10) + g[i + 1:])
        out.append(g[:-1] or "x")
        out.append(f"{g} or {g}")
    return out


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_wrapping_changes_no_verdict(task_and_questions, data):
    task, questions = task_and_questions
    q = data.draw(st.sampled_from(questions))
    answer = data.draw(st.sampled_from(_answers(questions)))
    layers = data.draw(LAYERS)
    plain = task.check(q, f"<answer>{answer}</answer>")
    dressed = task.check(q, f"<answer>{wrap(answer, layers)}</answer>")
    assert dressed.correct == plain.correct, (answer, wrap(answer, layers), plain, dressed)
    assert task.check(q, f"<answer>{wrap(q.gold, layers)}</answer>").correct


def test_unbalanced_gold_is_still_wrong(task_and_questions):
    task, questions = task_and_questions
    q = questions[0]
    for text in [f"${q.gold}", f"{q.gold}$", f"**{q.gold}", f"\\boxed{{{q.gold}", f"**{q.gold}** or **{q.gold}x**",
                 f"The answer is \\boxed{{{q.gold}}}", f"\\boxed{{{q.gold}}} \\boxed{{{q.gold}}}"]:
        assert not task.check(q, f"<answer>{text}</answer>").correct, text


def test_reasoning_gym_keeps_wrapper_like_golds():
    # a gold that a wrapper rule would change (here: a trailing period) is content: the answer is scored as written
    task = get_task("reasoning_gym", dataset="basic_arithmetic", isolate=False)
    q = task.generate(1, seed=0)[0]
    entry = {**q.metadata["entry"], "answer": q.gold + "."}
    odd = q.model_copy(update={"gold": q.gold + ".", "metadata": {**q.metadata, "entry": entry}})
    assert task.normalize(odd, "**5**") == "**5**"
    assert task.normalize(q, "**5**") == "5"


def test_screening_sees_the_normalised_answer():
    task = get_task("reasoning_gym", dataset="basic_arithmetic", isolate=False)
    q = task.generate(1, seed=0)[0]
    assert task.check(q, f"<answer>\\boxed{{{q.gold}}}</answer>").correct  # the backslash is gone before screening
    for payload in ["\\boxed{__import__('os').getpid()}", "**9**9**9**", "$\\boxed{9**9**9}$", "`__import__`"]:
        assert task.check(q, f"<answer>{payload}</answer>").reason == "screened", payload
