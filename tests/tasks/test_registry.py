"""Walk the task registry: every task's gold verifies, generation is deterministic and per-item, train and test
never share a question, prompts and question files behave the same for all tasks."""

from __future__ import annotations

import pytest

from skillfactory.prompting import ANSWER_RULE, VARIANTS
from skillfactory.records import Question
from skillfactory.tasks import UnknownTaskError, extract_answer, get_task, list_tasks
from skillfactory.tasks.base import QuestionFieldError

#: Parameters for tasks that need some, and cheap options for the test (the scorer runs in-process here;
#: the isolated scorer has its own tests).
PARAMS = {"reasoning_gym": {"dataset": "basic_arithmetic", "isolate": False}}
N = {"reasoning_gym": 30}


@pytest.fixture(scope="module", params=list_tasks())
def task(request):
    return get_task(request.param, **PARAMS.get(request.param, {}))


def test_registry_lists_all_tasks():
    assert {"countdown", "multiplication", "letter_countdown", "acronym", "reasoning_gym"} <= set(list_tasks())


def test_gold_verifies_and_generation_is_deterministic(task):
    n = N.get(task.name, 150)
    train = task.generate(n, seed=7)
    assert len(train) == n and all(q.split == "train" and q.task == task.name for q in train)
    assert len({q.id for q in train}) == n
    for q in train:
        res = task.check(q, f"Let me think.\n<answer>\n{q.gold}\n</answer>")
        assert res.correct, (q.id, q.gold, res)
        task.validate_question(q)
    # item i depends only on (params, seed, split, i): a shorter run is a prefix, a rebuilt task agrees
    again = get_task(task.name, **PARAMS.get(task.name, {})).generate(n // 3, seed=7)
    assert [q.model_dump() for q in again] == [q.model_dump() for q in train[: n // 3]]
    assert task.generate_one(n - 1, seed=7) == train[-1]
    other_seed = task.generate(10, seed=8)
    assert [q.fields for q in other_seed] != [q.fields for q in train[:10]]


def test_train_and_test_are_disjoint(task):
    n = N.get(task.name, 300)
    train, test = task.generate(n, seed=1, split="train"), task.generate(n, seed=1, split="test")
    assert all(q.split == "test" for q in test)
    assert not {task.canonical_key(q.fields) for q in train} & {task.canonical_key(q.fields) for q in test}
    assert all(task.split_of(q.fields) == "test" for q in test)


def test_prompts_and_extraction(task):
    q = task.generate(1, seed=0)[0]
    statement = task.statement(q)
    prompts = {v: task.prompt(q, v) for v in VARIANTS}
    assert len(set(prompts.values())) == len(VARIANTS)
    for p in prompts.values():
        assert statement in p and ANSWER_RULE in p
    with pytest.raises(ValueError):
        task.prompt(q, "bogus")
    assert task.check(q, "no tags here").reason == "no_answer"
    assert not task.verify(q, "<answer></answer>")
    assert not task.verify(q, f"<answer>{q.gold}</answer> <answer>nope</answer>")  # the last block counts
    assert task.verify(q, f"<answer>nope</answer> <answer>{q.gold}</answer>")
    assert extract_answer(f"<ANSWER> {q.gold} </Answer>") == q.gold


def test_question_file_round_trip(task, tmp_path):
    from skillfactory.records import read_jsonl, write_jsonl
    from skillfactory.tasks import task_for

    qs = task.generate(3, seed=0)
    write_jsonl(tmp_path / "q.jsonl", qs)
    back = read_jsonl(tmp_path / "q.jsonl", Question)
    assert back == qs
    assert all(task_for(q).verify(q, f"<answer>{q.gold}</answer>") for q in back)


def test_bad_fields_are_named(task):
    q = task.generate(1, seed=0)[0]
    first = next(iter(q.fields))
    broken = q.model_copy(update={"fields": {k: v for k, v in q.fields.items() if k != first}})
    with pytest.raises(QuestionFieldError, match=f"fields.{first}"):
        task.validate_question(broken, "q.jsonl:3")


def test_unknown_task_and_dotted_path():
    with pytest.raises(UnknownTaskError, match="did you mean 'countdown'"):
        get_task("countdwn")
    t = get_task("skillfactory.tasks.countdown:Countdown", num_args=2)
    assert t.name == "countdown" and len(t.generate(1)[0].fields["numbers"]) == 2
    with pytest.raises(UnknownTaskError):
        get_task("skillfactory.records:Question")
