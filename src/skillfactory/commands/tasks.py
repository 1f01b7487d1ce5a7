"""``skillfactory tasks``: list tasks, generate question files, self-check the verifiers, score answer files.

    skillfactory tasks list
    skillfactory tasks generate countdown -n 1000 --seed 0 --param num_args=4 -o questions.jsonl
    skillfactory tasks check                      # every task: gold verifies, deterministic, splits disjoint
    skillfactory tasks verify countdown --questions questions.jsonl --answers answers.jsonl

``answers.jsonl`` holds one ``{"id": <question id>, "text": <completion>}`` per line; the verifier reads the
last ``<answer>...</answer>`` block of ``text``.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import typer

tasks_app = typer.Typer(help="Task suite: generate questions and verify answers exactly.", no_args_is_help=True)

#: Parameters that ``tasks check`` uses for tasks that cannot run without some.
CHECK_DEFAULTS: dict[str, dict[str, Any]] = {"reasoning_gym": {"dataset": "basic_arithmetic"}}


def _params(pairs: list[str] | None) -> dict[str, Any]:
    from skillfactory.config import parse_overrides

    return parse_overrides(pairs)


@tasks_app.command("list")
def list_cmd() -> None:
    """List the registered tasks with their parameters and defaults."""
    from rich.console import Console
    from rich.table import Table

    from skillfactory.tasks import REGISTRY, get_task_class

    table = Table("task", "parameters (default)", "what")
    for name in sorted(REGISTRY):
        cls = get_task_class(name)
        fields = cls.Params.model_fields
        params = ", ".join(
            f"{k} (required)" if f.is_required() else f"{k}={f.get_default(call_default_factory=True)!r}"
            for k, f in fields.items()
        )
        doc = (sys.modules[cls.__module__].__doc__ or "").strip().split("\n")[0]
        table.add_row(name, params, doc)
    Console().print(table)


@tasks_app.command("generate")
def generate_cmd(
    task: str = typer.Argument(..., help="task name (see `skillfactory tasks list`) or module:Class"),
    n: int = typer.Option(100, "-n", "--n", min=1, help="number of questions"),
    seed: int = typer.Option(0, "--seed", help="item i depends only on (params, seed, split, i)"),
    split: str = typer.Option("train", "--split", help="train | test (never share a question)"),
    param: list[str] = typer.Option(None, "--param", "-p", help="task parameter KEY=VALUE (repeatable)"),
    out: Path = typer.Option(..., "-o", "--out", help="questions JSONL file to write (atomically)"),
) -> None:
    """Generate questions (with gold answers) to a JSONL file."""
    from rich.console import Console
    from rich.progress import Progress

    from skillfactory.records import write_jsonl
    from skillfactory.tasks import get_task

    t = get_task(task, **_params(param))
    questions = []
    with Progress(transient=True) as progress:
        bar = progress.add_task(f"generating {t.name}", total=n)
        for i in range(n):
            questions.append(t.generate_one(i, seed, split))
            progress.advance(bar)
    write_jsonl(out, questions)
    Console().print(f"wrote {len(questions)} {t.name} questions ({split}, seed {seed}, {t.param_tag}) to {out}",
                    soft_wrap=True)


def check_task(name: str, params: dict[str, Any], n: int = 20, seed: int = 0) -> dict[str, Any]:
    """Self-check one task: gold verifies, generation is deterministic, train and test are disjoint, and an
    empty completion is rejected. Returns a dict of named booleans plus counts."""
    from skillfactory.tasks import get_task

    t = get_task(name, **params)
    train, test = t.generate(n, seed, "train"), t.generate(n, seed, "test")
    again = t.generate(n, seed, "train")
    key = t.canonical_key
    return {
        "task": name,
        "params": t.param_tag,
        "gold_verifies": all(t.verify(q, f"<answer>{q.gold}</answer>") for q in train + test),
        "deterministic": [q.model_dump() for q in train] == [q.model_dump() for q in again],
        "splits_disjoint": not ({key(q.fields) for q in train} & {key(q.fields) for q in test}),
        "rejects_empty": not any(t.verify(q, "") or t.verify(q, "<answer></answer>") for q in train[:5]),
        "n": 2 * n,
    }


@tasks_app.command("check")
def check_cmd(
    task: str = typer.Argument(None, help="one task (default: every registered task)"),
    n: int = typer.Option(20, "-n", "--n", min=1, help="questions per split"),
    seed: int = typer.Option(0, "--seed"),
    param: list[str] = typer.Option(None, "--param", "-p", help="task parameter KEY=VALUE (repeatable)"),
) -> None:
    """Self-check tasks: gold answers verify, generation is deterministic, train/test disjoint."""
    from rich.console import Console
    from rich.table import Table

    from skillfactory.tasks import list_tasks

    names = [task] if task else list_tasks()
    checks = ("gold_verifies", "deterministic", "splits_disjoint", "rejects_empty")
    table = Table("task", *checks, "questions")
    failed = 0
    for name in names:
        params = _params(param) if task else {}
        params = {**CHECK_DEFAULTS.get(name, {}), **params}
        res = check_task(name, params, n=n, seed=seed)
        failed += not all(res[c] for c in checks)
        table.add_row(name, *("[green]ok[/]" if res[c] else "[red]FAIL[/]" for c in checks), str(res["n"]))
    console = Console()
    console.print(table)
    console.print(f"{len(names) - failed}/{len(names)} tasks pass", soft_wrap=True)
    if failed:
        raise typer.Exit(1)


def _nonblank_linenos(path: Path) -> list[int]:
    """Line numbers of the non-blank lines (the records ``iter_jsonl`` yields, in order)."""
    return [i for i, raw in enumerate(path.read_bytes().split(b"\n"), 1) if raw.strip()]


def load_answers(path: Path) -> dict[str, str]:
    """``{"id", "text"}`` lines -> {id: text}; errors name the file, line and field."""
    from skillfactory.records import RecordError, iter_jsonl

    out: dict[str, str] = {}
    for lineno, obj in zip(_nonblank_linenos(path), iter_jsonl(path)):
        for field in ("id", "text"):
            if not isinstance(obj.get(field), str):
                raise RecordError(f"{path}:{lineno}: field '{field}': expected a string, got {obj.get(field)!r:.60}")
        if obj["id"] in out:
            raise RecordError(f"{path}:{lineno}: field 'id': duplicate answer for {obj['id']!r}")
        out[obj["id"]] = obj["text"]
    return out


def verify_files(task: str, questions_path: Path, answers_path: Path) -> dict[str, Any]:
    """Score an answers file against a questions file. Returns accuracy, counts and failure reasons."""
    from skillfactory.records import Question, RecordError, iter_jsonl
    from skillfactory.tasks import get_task_class, task_for

    expected = get_task_class(task).name
    questions = []
    for lineno, q in zip(_nonblank_linenos(questions_path), iter_jsonl(questions_path, Question)):
        if q.task != expected and q.task != task:
            raise RecordError(f"{questions_path}:{lineno}: field 'task': {q.task!r}, expected {expected!r}")
        task_for(q).validate_question(q, f"{questions_path}:{lineno}")
        questions.append(q)
    answers = load_answers(answers_path)
    known = {q.id for q in questions}
    unknown = sorted(set(answers) - known)
    if unknown:
        raise RecordError(f"{answers_path}: field 'id': {len(unknown)} answers name no question, e.g. {unknown[0]!r}")
    tasks: dict[tuple[str, str], Any] = {}
    reasons: Counter[str] = Counter()
    for q in questions:
        key = (q.task, json.dumps(q.params, sort_keys=True))
        if key not in tasks:
            tasks[key] = task_for(q)
        text = answers.get(q.id)
        reasons["missing" if text is None else tasks[key].check(q, text).reason] += 1
    correct = reasons.pop("ok", 0)
    return {"questions": len(questions), "answered": len(answers), "correct": correct,
            "accuracy": correct / len(questions) if questions else 0.0, "reasons": dict(reasons.most_common())}


@tasks_app.command("verify")
def verify_cmd(
    task: str = typer.Argument(..., help="the task the questions belong to"),
    questions: Path = typer.Option(..., "--questions", "-q", help="questions JSONL (from `tasks generate`)"),
    answers: Path = typer.Option(..., "--answers", "-a", help='answers JSONL: {"id": ..., "text": ...} per line'),
    as_json: bool = typer.Option(False, "--json", help="print the result as JSON"),
) -> None:
    """Verify answers exactly; print accuracy and a table of failure reasons."""
    from rich.console import Console
    from rich.table import Table

    res = verify_files(task, questions, answers)
    console = Console()
    if as_json:
        console.print_json(json.dumps(res))
        return
    if res["reasons"]:
        table = Table("failure reason", "count", "share")
        for reason, count in res["reasons"].items():
            table.add_row(reason, str(count), f"{count / res['questions']:.1%}")
        console.print(table)
    console.print(f"accuracy {res['accuracy']:.1%} ({res['correct']}/{res['questions']} correct, "
                  f"{res['answered']} answered)", soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Add the ``tasks`` sub-app."""
    app.add_typer(tasks_app, name="tasks")
