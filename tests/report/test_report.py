"""The report on a small scripted experiment (base, rl_only, skillfactory + training logs): files, determinism,
self-containment, escaping, claims against hand-computed effects, pooling of several runs, and the CLI."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from eval_fakes import ScriptedBackend, question_of
from typer.testing import CliRunner

from skillfactory.report import PLOTS, write_report
from skillfactory.report.claims import HELD, UNTESTABLE, ClaimsConfig, evaluate_claims
from skillfactory.report.html import segment
from skillfactory.report.load import ReportError, load_inputs

SUITE = ([{"task": "addsum", "params": {"digits": d}, "n": 6, "samples": 2, "max_new_tokens": 64} for d in (1, 2, 3)]
         + [{"task": "subdiff", "params": {"digits": 2}, "n": 6, "samples": 2, "max_new_tokens": 64}])
EVIL = "</script><script>alert(1)</script><!--"


def model_script(label: str):
    """base: half right everywhere. rl_only: always right on the training difficulty (1 digit), half right on
    harder ones, always wrong out of domain. skillfactory: always right on addsum, half right out of domain,
    with attempts/reflections/verdicts; under budget forcing its first attempt is wrong, later ones right."""

    def script(req, i, params):
        op, a, b = question_of(req)
        gold = a + b if op == "+" else a - b
        if label == "base":
            ok = i == 0
        elif label == "rl_only":
            ok = (op == "+" and a < 10) or (op == "+" and i == 0)
        else:
            ok = op == "+" or i == 0
        ans = gold if ok else gold + 1
        if label != "skillfactory":
            return f"{EVIL} so <answer>{ans}</answer>"
        if req.prefix:
            return f"{gold} <answer>{gold}</answer>\n</sample>\n</think>\n<answer>{gold}</answer>"
        if params.n == 1:  # budget forcing rounds ask for one completion at a time
            return f"<think>\n<sample>\n<answer>{gold + 1}</answer>\n</sample>\n</think>\n<answer>{gold + 1}</answer>"
        return (f"<think>\n<sample>\n<answer>{gold + 1}</answer>\n</sample>\n<reflect>\n<verdict>Incorrect</verdict>\n"
                f"</reflect>\n<sample>\n<answer>{ans}</answer>\n</sample>\n<reflect>\n<verdict>Correct</verdict>\n"
                f"</reflect>\n</think>\n<answer>{ans}</answer>")

    return script


@pytest.fixture(scope="session")
def experiment(tmp_path_factory) -> Path:
    from skillfactory.evaluation.evaluate import EvalConfig, evaluate
    from skillfactory.tasks import REGISTRY

    root = tmp_path_factory.mktemp("experiment")
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(REGISTRY, "addsum", "eval_fakes:AddTask")
        mp.setitem(REGISTRY, "subdiff", "eval_fakes:SubTask")
        for label in ("base", "rl_only", "skillfactory"):
            bf = {"enabled": True, "budgets": [0, 1], "entries": ["addsum[digits=2]"], "samples": 1}
            evaluate(EvalConfig(model=f"m-{label}", label=label, suite=SUITE, out=str(root / label / "eval"),
                                budget_forcing=bf if label == "skillfactory" else {}),
                     backend=ScriptedBackend(model_script(label)))
    for arm in ("rl_only", "skillfactory"):
        (root / arm / "grpo").mkdir()
        rows = [{"stage": "grpo", "step": s, "loss": 1.0 / s, "reward_mean": s / 10, "completion_length": 50,
                 "clipped_ratio": 0.0, "attempts": 1.0, "verdicts": 0.0} for s in range(1, 11)]
        (root / arm / "grpo" / "train_log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (root / "experiment.json").write_text(json.dumps({"train_task": "addsum", "train_params": {"digits": 1}}))
    return root


@pytest.fixture(scope="session")
def report(experiment, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("report")
    write_report([experiment], out, title="Test report")
    return out


def test_files_written(report):
    for name in ("report.md", "report.html", *PLOTS):
        assert (report / name).stat().st_size > 0, name
    for name in PLOTS:
        assert (report / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = (report / "report.md").read_text()
    assert "| addsum | digits=2 |" in md and "rl_only/grpo" in md and "## Claims" in md


def test_same_inputs_same_bytes(experiment, report, tmp_path):
    write_report([experiment], tmp_path, title="Test report")
    for name in ("report.md", "report.html", *PLOTS):
        assert (tmp_path / name).read_bytes() == (report / name).read_bytes(), name


def test_html_is_self_contained_and_escapes_model_text(report):
    page = (report / "report.html").read_text()
    assert not re.search(r"(src|href)=['\"]?(https?:)?//", page)
    assert page.count("data:image/png;base64,") == len(PLOTS)
    assert page.count("<script") == 2 and EVIL not in page  # model text cannot close or open a script
    data = json.loads(re.search(r"id='trace-data'>(.*?)</script>", page, re.S).group(1))
    assert {d["model"] for d in data} == {"base", "rl_only", "skillfactory"}
    assert any(EVIL in seg["t"] for d in data for seg in d["segs"])  # ... yet the viewer shows it verbatim
    assert {d["correct"] for d in data} == {True, False}
    sf = next(d for d in data if d["model"] == "skillfactory" and d["mode"] == "plain")
    assert [s["k"] for s in sf["segs"]] == ["text", "sample", "reflect", "sample", "reflect", "text", "answer"]


def test_claims_by_hand(experiment):
    inputs = load_inputs([experiment])
    claims = {c["claim"]: c for c in evaluate_claims(inputs.evals, ClaimsConfig(train_task="addsum",
                                                                               train_params={"digits": 1}))}
    # 1: harder addsum (2, 3 digits): skillfactory 1.0, rl_only 0.5 on every question -> +0.5, interval [0.5, 0.5]
    assert claims[1]["status"] == HELD and claims[1]["difference"] == pytest.approx(0.5)
    assert claims[1]["ci"] == pytest.approx([0.5, 0.5])
    # 2: two attempts and two verdicts in every skillfactory answer
    assert claims[2]["status"] == HELD and claims[2]["attempts"] == pytest.approx([2, 2, 2])
    # 3: out of domain, skillfactory 0.5 vs rl_only 0.0 (base 0.5): less regression by +0.5
    assert claims[3]["status"] == HELD and claims[3]["difference"] == pytest.approx(0.5)
    assert "rl_only - base -0.500" in claims[3]["measured"]
    # 4: budget 0 -> first attempt wrong (0.0), one forced continuation -> right (1.0)
    assert claims[4]["status"] == HELD and claims[4]["difference"] == pytest.approx(1.0)
    assert claims[4]["slopes"] == pytest.approx([1.0])


def test_train_task_arguments(experiment, tmp_path):
    write_report([experiment / "base", experiment / "rl_only", experiment / "skillfactory"], tmp_path,
                 task="addsum", params={"digits": 1})
    md = (tmp_path / "report.md").read_text()
    assert "Trained on addsum (digits=1)." in md and "held" in md


def test_claims_untestable_without_arms(experiment):
    inputs = load_inputs([experiment / "base"])
    claims = evaluate_claims(inputs.evals, ClaimsConfig(train_task="addsum", train_params={"digits": 1}))
    assert [c["status"] for c in claims] == [UNTESTABLE] * 4
    no_task = evaluate_claims(load_inputs([experiment]).evals, ClaimsConfig())
    assert [c["status"] for c in no_task][:3] == [UNTESTABLE] * 3


def test_runs_of_one_label_are_pooled(experiment, tmp_path):
    for i in (1, 2):
        shutil.copytree(experiment / "base" / "eval", tmp_path / f"seed{i}")
    inputs = load_inputs([tmp_path])
    (run,) = inputs.evals
    e = run.results["entries"][0]
    single = load_inputs([experiment / "base"]).evals[0].results["entries"][0]
    assert run.results["runs"] == 2 and e["n"] == 2 * single["n"] and e["correct"] == 2 * single["correct"]
    assert e["accuracy"] == pytest.approx(single["accuracy"])
    assert all(v == [2 * c, 2 * n] for (c, n), v in zip(single["per_question"].values(), e["per_question"].values()))


def test_segment_by_hand():
    text = "<think>\n<sample>\nA <answer>1</answer>\n</sample>\n<reflect>\nno <verdict>Incorrect</verdict>\n</reflect>\n" \
           "</think>\n<answer>2</answer>"
    segs = segment(text, [False])
    assert segs == [{"k": "text", "t": "<think>"}, {"k": "sample", "t": "A <answer>1</answer>", "ok": False, "n": 1},
                    {"k": "reflect", "t": "no <verdict>Incorrect</verdict>", "v": False},
                    {"k": "text", "t": "</think>"}, {"k": "answer", "t": "2"}]


def test_cli_report_and_bad_input(experiment, tmp_path):
    from skillfactory.cli import app

    out = tmp_path / "r"
    r = CliRunner().invoke(app, ["report", str(experiment / "base"), str(experiment / "rl_only"),
                                 str(experiment / "skillfactory"), "--out", str(out), "--train-task", "addsum",
                                 "--train-param", "digits=1", "--title", "CLI"])
    assert r.exit_code == 0, r.output
    md = (out / "report.md").read_text()
    assert md.startswith("# CLI") and "held" in md
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ReportError, match="no results.json"):
        load_inputs([empty])


@pytest.mark.slow
def test_chromium_renders_report(report, tmp_path):
    """The page renders in headless Chromium (skipped where chromium is not installed)."""
    import subprocess

    if not (shutil.which("chromium") or shutil.which("chromium-browser")):
        pytest.skip("chromium not installed (apt-get install -y chromium)")
    script = Path(__file__).parents[2] / "scripts" / "screenshot_report.sh"
    shot = tmp_path / "shot.png"
    p = subprocess.run(["bash", str(script), str(report / "report.html"), str(shot), "1280x1600"],
                       capture_output=True, text=True, timeout=180)
    assert p.returncode == 0, p.stderr
    from PIL import Image

    img = Image.open(shot).convert("RGB")
    assert img.size == (1280, 1600)
    colours = img.getcolors(maxcolors=1 << 20)
    assert colours is not None and len(colours) > 50  # text, tables and claim colours, not a blank page


def test_harder_entries_fill_in_task_defaults():
    from skillfactory.report.claims import _harder_entries
    from skillfactory.report.load import EvalRun

    def entry(**params):
        return {"task": "countdown", "params": params, "label": str(params)}

    entries = [entry(num_args=2), entry(num_args=3, max_number=100), entry(num_args=4, max_number=100),
               entry(num_args=5), entry(num_args=5, max_number=20), {"task": "multiplication", "params": {"digits": 5},
                                                                     "label": "m"}]
    run = EvalRun("skillfactory", [], {"entries": entries})
    harder, key = _harder_entries({"skillfactory": run}, ClaimsConfig(train_task="countdown",
                                                                      train_params={"num_args": 3}))
    # 4 (default max_number spelled out) and 5 are harder; 2 is easier; max_number=20 changes two knobs
    assert [e["params"] for e in harder] == [{"num_args": 4, "max_number": 100}, {"num_args": 5}]
    assert key == "num_args"


def test_training_only_report(experiment, tmp_path):
    write_report([experiment / "rl_only" / "grpo"], tmp_path)
    md = (tmp_path / "report.md").read_text()
    assert "Training runs" in md and "## Claims" not in md
    assert (tmp_path / "training_curves.png").exists() and not (tmp_path / "accuracy_by_difficulty.png").exists()
