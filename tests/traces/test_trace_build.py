"""The traces stage end to end on small synthetic records: outputs, determinism, resume, summary, errors."""

from __future__ import annotations

import json
import random
import sys

import pytest
from trace_helpers import TASK, make_records, write_records

from skillfactory.errors import SkillFactoryError
from skillfactory.records import Question, Reflection, Sample, read_jsonl, write_jsonl
from skillfactory.records import Trace
from skillfactory.traces.build import TraceConfig, build_traces
from skillfactory.traces.formats import FORMATS

ALL = list(FORMATS)


def build(tmp_path, name="out", seed=0, workers=None, **kw):
    s, r = tmp_path / "samples.jsonl", tmp_path / "reflections.jsonl"
    if not s.exists():
        write_records(tmp_path, 7, n_questions=25)
    cfg = TraceConfig(samples=str(s), reflections=str(r), out=str(tmp_path / name), seed=seed, **kw)
    return build_traces(cfg, progress=False, workers=workers), tmp_path / name


def files(out, names=("traces.jsonl", "summary.json", "llamafactory/traces.json", "llamafactory/dataset_info.json")):
    names = [*names, "dataset/state.json", "dataset/dataset_info.json"]
    names += sorted(p.name for p in (out / "dataset").glob("*.arrow"))
    return {n: (out / n if not n.endswith(".arrow") else out / "dataset" / n).read_bytes() for n in names}


def test_outputs_and_same_seed_byte_identical(tmp_path):
    summary, out = build(tmp_path, "a", formats=ALL, repeats=2)
    _, out_b = build(tmp_path, "b", formats=ALL, repeats=2)
    assert summary["traces"] > 50
    assert files(out) == files(out_b)
    _, out_c = build(tmp_path, "c", seed=1, formats=ALL, repeats=2)
    assert files(out)["traces.jsonl"] != files(out_c)["traces.jsonl"]

    traces = read_jsonl(out / "traces.jsonl", Trace)
    assert len(traces) == summary["traces"] == sum(summary["per_format"].values())
    assert all([m["role"] for m in t.messages] == ["user", "assistant"] for t in traces)
    assert len({t.id for t in traces}) == len(traces)

    from datasets import load_from_disk

    ds = load_from_disk(str(out / "dataset"))
    assert len(ds) == len(traces)
    assert ds[0]["messages"] == traces[0].messages and ds[3]["format"] == traces[3].format

    lf = json.loads((out / "llamafactory" / "traces.json").read_text())
    info = json.loads((out / "llamafactory" / "dataset_info.json").read_text())
    entry = next(iter(info.values()))
    assert entry["file_name"] == "traces.json" and entry["formatting"] == "sharegpt"
    conv = lf[5][entry["columns"]["messages"]]
    assert [m["from"] for m in conv] == [entry["tags"]["user_tag"], entry["tags"]["assistant_tag"]]
    assert conv[1]["value"] == traces[5].messages[1]["content"]

    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["stage"] == "traces" and manifest["counts"]["traces"] == len(traces)
    assert (out / "config.yaml").exists()


@pytest.mark.skipif(sys.platform != "linux", reason="worker processes are forked on Linux only")
def test_worker_processes_give_the_same_files(tmp_path, monkeypatch):
    """Texts read by offset from our record files and the task's verifier work in forked workers too."""
    from skillfactory.traces import build as build_module

    monkeypatch.setattr(build_module, "ENCODE_EVERY", 9)  # many chunks
    one, out_one = build(tmp_path, "one", formats=ALL, repeats=2, workers=1)
    two, out_two = build(tmp_path, "two", formats=ALL, repeats=2, workers=2)
    assert one == two and files(out_one) == files(out_two)
    dataset = sorted(p.name for p in (out_two / "dataset").iterdir())
    assert [(out_one / "dataset" / n).read_bytes() for n in dataset] == \
        [(out_two / "dataset" / n).read_bytes() for n in dataset]


def test_input_file_order_does_not_matter(tmp_path):
    samples, reflections = make_records(3, n_questions=15)
    outs = []
    for k in range(2):
        random.Random(k).shuffle(samples)
        random.Random(k).shuffle(reflections)
        d = tmp_path / f"in{k}"
        d.mkdir()
        write_jsonl(d / "s.jsonl", samples)
        write_jsonl(d / "r.jsonl", reflections)
        cfg = TraceConfig(samples=str(d / "s.jsonl"), reflections=str(d / "r.jsonl"), formats=ALL, out=str(d / "o"))
        build_traces(cfg, progress=False)
        outs.append((d / "o" / "traces.jsonl").read_bytes())
    assert outs[0] == outs[1]


def test_adding_questions_keeps_other_questions_traces(tmp_path):
    samples, reflections = make_records(4, n_questions=20)
    keep = {s.question.id for s in samples if s.question.id < "add/q00010"}
    cut = tmp_path / "cut"
    cut.mkdir()
    write_jsonl(cut / "s.jsonl", [s for s in samples if s.question.id in keep])
    write_jsonl(cut / "r.jsonl", [r for r in reflections if r.question_id in keep])
    write_jsonl(tmp_path / "s.jsonl", samples)
    write_jsonl(tmp_path / "r.jsonl", reflections)
    small = build_traces(TraceConfig(samples=str(cut / "s.jsonl"), reflections=str(cut / "r.jsonl"),
                                     formats=ALL, out=str(cut / "o")), progress=False)
    build_traces(TraceConfig(samples=str(tmp_path / "s.jsonl"), reflections=str(tmp_path / "r.jsonl"),
                             formats=ALL, out=str(tmp_path / "o")), progress=False)
    a = (cut / "o" / "traces.jsonl").read_text().splitlines()
    b = [line for line in (tmp_path / "o" / "traces.jsonl").read_text().splitlines()
         if json.loads(line)["question_id"] in keep]
    assert small["traces"] > 0 and a == b


def test_finished_build_is_skipped_and_rebuilt_when_inputs_change(tmp_path):
    first, out = build(tmp_path, formats=["*C_full"])
    stamp = (out / "traces.jsonl").stat().st_mtime_ns
    again, _ = build(tmp_path, formats=["*C_full"])
    assert again == first and (out / "traces.jsonl").stat().st_mtime_ns == stamp
    other, _ = build(tmp_path, formats=["*C_full", "*CC"])  # another config: rebuilt
    assert other["per_format"].get("*CC", 0) > 0
    write_records(tmp_path, 8, n_questions=5)  # upstream stage rewrote its files
    changed, _ = build(tmp_path, formats=["*C_full", "*CC"])
    assert changed["questions"]["total"] <= 5


def test_outputs_written_alone_are_the_same_bytes_and_read_back(tmp_path, tiny_model_dir):
    from skillfactory.training.sft import _message_rows
    from skillfactory.traces.show import read_traces

    _, whole = build(tmp_path, "all", formats=["*C_full", "*CC"], repeats=2)
    summary, out = build(tmp_path, "one", formats=["*C_full", "*CC"], repeats=2, outputs="dataset")
    assert sorted(p.name for p in out.iterdir()) == ["config.yaml", "dataset", "manifest.json", "summary.json"]
    assert files(out, ["summary.json"]) == files(whole, ["summary.json"])
    assert TraceConfig(samples="s", reflections="r", out="o", outputs="llamafactory,jsonl").outputs == [
        "jsonl", "llamafactory"]  # one order, whatever the order given

    jsonl = [json.loads(line) for line in (whole / "traces.jsonl").read_text().splitlines()]
    assert read_traces(out, n=4, start=2, fmt="*CC") == read_traces(whole, n=4, start=2, fmt="*CC")
    assert [m for _, m in _message_rows(out)] == [t["messages"] for t in jsonl]  # SFT reads the dataset

    stamp = (out / "manifest.json").stat().st_mtime_ns
    assert build(tmp_path, "one", formats=["*C_full", "*CC"], repeats=2, outputs=["dataset"])[0] == summary
    assert (out / "manifest.json").stat().st_mtime_ns == stamp  # finished: not redone
    build(tmp_path, "one", formats=["*C_full", "*CC"], repeats=2, outputs=["jsonl"])  # another config: rebuilt
    assert not (out / "dataset").exists() and (out / "traces.jsonl").read_bytes() == (whole / "traces.jsonl").read_bytes()

    with_tok, _ = build(tmp_path, "tok", formats=["*C_full"], max_responses=3, tokenizer=str(tiny_model_dir))
    alone, _ = build(tmp_path, "tok1", formats=["*C_full"], max_responses=3, tokenizer=str(tiny_model_dir),
                     outputs=["dataset"])
    assert alone["token_lengths"] == with_tok["token_lengths"] is not None


def test_summary_counts(tmp_path):
    summary, _ = build(tmp_path, formats=["*C*IC", "0C"], max_responses=4)
    samples, _ = make_records(7, n_questions=25)
    assert summary["attempts"]["total"] == len(samples)
    assert summary["attempts"]["usable"] + sum(v for k, v in summary["attempts"].items()
                                               if k.startswith("unusable:")) == len(samples)
    q = summary["questions"]
    assert q["total"] == len({s.question.id for s in samples})
    assert q["with_traces"] + sum(q["dropped"].values()) == q["total"]
    assert summary["per_format"]["0C"] == q["with_traces"]
    assert all(int(n) <= 4 for n in summary["blocks_per_trace"]["*C*IC"])
    assert summary["token_lengths"] is None


def test_token_length_percentiles_under_a_tokenizer(tmp_path, tiny_model_dir):
    summary, _ = build(tmp_path, formats=["*C_full"], max_responses=3, tokenizer=str(tiny_model_dir))
    tl = summary["token_lengths"]
    assert tl["tokenizer"] == str(tiny_model_dir)
    chat, assistant = tl["chat"]["all"], tl["assistant"]["all"]
    assert 0 < chat["p50"] <= chat["p90"] <= chat["p99"] <= chat["max"]
    assert assistant["max"] < chat["max"]  # the chat adds the user turn and template tokens
    assert set(tl["chat"]) == {"all", "*C_full"}


def test_final_answer_that_fails_the_verifier_is_skipped_and_counted(tmp_path):
    q = Question(id="add/x", task=TASK, fields={"a": 2, "b": 3}, gold="5")
    s = Sample(question=q, variant="original", index=0, prompt="p", text="2+3=6 <answer>6</answer>", extracted="6",
               correct=True, why="ok", n_tokens=3, finish_reason="stop")  # labelled correct, but it is not
    r = Reflection(sample_id=s.id, question_id=q.id, index=0, text="<verdict>Correct</verdict>", verdict=True,
                   truth=True, kept=True, n_tokens=2, finish_reason="stop")
    write_jsonl(tmp_path / "samples.jsonl", [s])
    write_jsonl(tmp_path / "reflections.jsonl", [r])
    summary, _ = build(tmp_path, formats=["0C"])
    assert summary["traces"] == 0
    assert summary["skipped"]["0C"] == {"final_answer_fails_check": 1}


@pytest.mark.parametrize("which, content, needle", [
    ("samples", "", "no records"),
    ("samples", '{"question": 3}\n', "field 'question'"),
    ("reflections", "not json at all\n", "reflections.jsonl:1"),
    ("reflections", '{"sample_id": "x", "index": 0, "text": "t", "verdict": true, "truth": "yes", "kept": true}\n',
     ":1: field 'truth': expected `bool`"),
    ("reflections", '{"sample_id": "x", "index": 0, "verdict": true, "truth": true, "kept": true}\n',
     ":1: field 'text': missing"),
    ("reflections", None, "file not found"),
])
def test_bad_record_files_name_file_and_field(tmp_path, which, content, needle):
    write_records(tmp_path, 1, n_questions=3)
    path = tmp_path / f"{which}.jsonl"
    if content is None:
        path.unlink()
    else:
        path.write_text(content)
    with pytest.raises(SkillFactoryError) as e:
        build(tmp_path)
    assert needle in str(e.value) and str(path.name) in str(e.value)


def test_torn_last_line_is_skipped(tmp_path):
    write_records(tmp_path, 2, n_questions=6)
    ok, _ = build(tmp_path, "a", formats=["0C"])
    with (tmp_path / "samples.jsonl").open("a") as f:
        f.write('{"question": {"id": "torn')  # an interrupted append
    torn, _ = build(tmp_path, "b", formats=["0C"])
    assert torn == ok


@pytest.mark.parametrize("kw, field", [
    (dict(formats=["*Q"]), "formats"),
    (dict(formats=["*C*IC"], max_responses=2), "max_responses"),
    (dict(formats={"*C": 0.0}), "formats"),
    (dict(raw="x.parquet"), "raw"),
    (dict(outputs=["llamafactory"]), "outputs"),
    (dict(outputs=["dataset", "dataset"]), "outputs"),
    (dict(outputs=["parquet"]), "outputs"),
])
def test_config_errors_name_the_field(tmp_path, kw, field):
    from skillfactory.config import ConfigError, validate

    data = {"samples": "s", "reflections": "r", "out": str(tmp_path), **kw}
    with pytest.raises(ConfigError) as e:
        validate(TraceConfig, data)
    assert field in str(e.value)


def test_glue_pool_size_keeps_the_attempts_and_uses_only_the_first_phrases(tmp_path):
    from skillfactory.evaluation.skills import structure_of
    from skillfactory.traces.phrases import POOLS

    _, full = build(tmp_path, "full", formats=["*C_full", "*C*IC", "no_reflection"], max_responses=4)
    _, one = build(tmp_path, "one", formats=["*C_full", "*C*IC", "no_reflection"], max_responses=4, glue_pool_size=1)
    a, b = read_jsonl(full / "traces.jsonl", Trace), read_jsonl(one / "traces.jsonl", Trace)
    # same traces, same attempts and checks: only the glue wording differs
    assert [(t.id, t.sample_ids, t.reflection_ids) for t in a] == [(t.id, t.sample_ids, t.reflection_ids) for t in b]
    firsts = {pool[0] for pool in POOLS.values()}
    allowed = firsts | {f"{POOLS[p][0]} {POOLS['generic'][0]}" for p in ("after_correct", "after_incorrect")}
    from skillfactory.evaluation.skills import _ANY_BLOCK, _TAG_LINE

    glue_lines = set()
    for t in b:
        text = t.messages[-1]["content"]
        assert structure_of(text)[0]  # every trace in the structure: samples closed, a final answer
        outside = _ANY_BLOCK.sub("\n", text)  # what is neither an attempt, a check nor the answer: the glue
        glue_lines |= {ln.strip() for ln in outside.splitlines() if ln.strip() and not _TAG_LINE.match(ln)}
    assert glue_lines and glue_lines <= allowed
    assert any(x.messages != y.messages for x, y in zip(a, b))
