"""Suites: loading, defaults, and one-line errors that list the valid choices."""

from __future__ import annotations

import importlib.resources
import importlib.util

import pytest

from skillfactory.evaluation.suite import SuiteError, load_suite, packaged_suites
from skillfactory.tasks import REGISTRY


def write(tmp_path, text):
    p = tmp_path / "suite.yaml"
    p.write_text(text)
    return p


def error_of(source) -> str:
    with pytest.raises(SuiteError) as e:
        load_suite(source)
    msg = str(e.value)
    assert "\n" not in msg
    return msg


def test_unknown_task_lists_valid_tasks(tmp_path):
    msg = error_of(write(tmp_path, "- {task: countdwn, params: {num_args: 3}}\n"))
    assert "entry 1" in msg and "countdwn" in msg and "did you mean 'countdown'" in msg
    for name in REGISTRY:
        assert name in msg


def test_unknown_parameter_lists_valid_parameters(tmp_path):
    msg = error_of(write(tmp_path, "- {task: addsum, params: {digits: 2}}\n- {task: addsum, params: {digitz: 2}}\n"))
    assert "entry 2" in msg and "digitz" in msg and "parameters: digits" in msg


def test_bad_parameter_value(tmp_path):
    msg = error_of(write(tmp_path, "- {task: addsum, params: {digits: 9}}\n"))
    assert "digits" in msg and "entry 1" in msg


def test_unknown_entry_field_lists_fields(tmp_path):
    msg = error_of(write(tmp_path, "- {task: addsum, questions: 3}\n"))
    assert "questions" in msg and "valid fields here: task, params, n, samples" in msg


def test_other_bad_suites(tmp_path):
    assert "no such file" in error_of(tmp_path / "missing.yaml")
    assert "packaged" in error_of("nonexistent_suite")
    assert "non-empty list" in error_of(write(tmp_path, "[]\n"))
    assert "share the label" in error_of([{"task": "addsum"}, {"task": "addsum"}])


def test_labels_groups_and_difficulty():
    s = load_suite([{"task": "addsum", "params": {"digits": 1}}, {"task": "addsum", "params": {"digits": 3}, "n": 5},
                    {"task": "addsum", "label": "fixed", "difficulty": "7", "group": "other"}])
    a, b, c = s.entries
    assert (a.label, a.group, a.difficulty, a.difficulty_value) == ("addsum[digits=1]", "addsum", "digits=1", 1.0)
    assert (b.n, b.difficulty_value) == (5, 3.0)
    assert (c.label, c.group, c.difficulty, c.difficulty_value) == ("fixed", "other", "7", 7.0)
    assert s.entry("fixed") is c


def test_mapping_form_and_packaged_list():
    s = load_suite({"name": "mine", "entries": [{"task": "addsum"}]})
    assert s.name == "mine" and s.entries[0].difficulty == "default"
    assert {"default", "quick"} <= set(packaged_suites())


@pytest.mark.parametrize("name", ["default", "quick"])
def test_packaged_suites_load(name):
    tasks = {"countdown", "multiplication", "letter_countdown", "acronym", "reasoning_gym"}
    missing = [t for t in tasks if importlib.util.find_spec(f"skillfactory.tasks.{t}") is None]
    suite_text = (importlib.resources.files("skillfactory") / "suites" / f"{name}.yaml").read_text()
    if any(f"task: {t}" in suite_text for t in missing):
        pytest.skip(f"tasks not available yet: {missing}")
    s = load_suite(name)
    assert s.name == name and len(s.entries) >= 5
    countdown = [e for e in s.entries if e.task == "countdown"]
    assert [e.difficulty_value for e in countdown] == sorted(e.difficulty_value for e in countdown)


@pytest.mark.parametrize(("name", "preset"), [("default", "published"), ("quick", "tiny")])
def test_packaged_suites_do_not_cut_below_the_grpo_cap(name, preset):
    """A multi-attempt answer cut before its final <answer> scores 0: eval's cap must be >= GRPO's."""
    from skillfactory.training.grpo import GRPORunConfig

    cap = GRPORunConfig.PRESETS[preset]["max_completion_length"]
    suite_text = (importlib.resources.files("skillfactory") / "suites" / f"{name}.yaml").read_text()
    caps = [int(line.split("max_new_tokens:")[1].strip(" }")) for line in suite_text.splitlines()
            if "max_new_tokens:" in line and not line.lstrip().startswith("#")]
    assert caps and min(caps) >= cap


def test_cap_warning_names_short_entries_of_a_grpo_model(tmp_path):
    import json

    from skillfactory.evaluation.suite import cap_warning, training_cap

    run = tmp_path / "grpo"
    (run / "final").mkdir(parents=True)
    (run / "manifest.json").write_text(json.dumps({"stage": "grpo"}))
    (run / "config.yaml").write_text("max_completion_length: 4096\n")
    suite = load_suite([{"task": "addsum", "max_new_tokens": 1024, "label": "short"},
                        {"task": "addsum", "params": {"digits": 2}, "max_new_tokens": 4096}])
    assert training_cap(run / "final") == training_cap(run) == 4096
    msg = cap_warning(suite, run / "final")
    assert msg is not None and "\n" not in msg and "short" in msg and "addsum[digits=2]" not in msg
    assert ">= 4096" in msg
    (run / "manifest.json").write_text(json.dumps({"stage": "sft"}))
    assert training_cap(run / "final") is None and cap_warning(suite, run / "final") is None
    assert cap_warning(suite, "served-model-name") is None
