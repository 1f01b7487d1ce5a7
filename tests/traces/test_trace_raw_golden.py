"""Raw-layout builds give the same bytes as before the fast reader (hashes recorded from the row-by-row reader).

The inputs hold every kind of row the reader treats specially: thinking blocks, structure tags and chat special
tokens in responses and reflections, empty and whitespace-only responses, verdicts in odd case or spacing,
Unicode that Python's case-insensitive matching folds onto ASCII (``ı``, ``İ``) or treats as whitespace, two
verdicts, none, null cells, and non-ASCII text around a plain verdict. If one of these hashes changes, a build
from the released data no longer gives the traces it gave before: find out why before updating it.
"""

from __future__ import annotations

import hashlib
import json
import random
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from skillfactory.traces import build as build_module
from skillfactory.traces import raw as raw_module
from skillfactory.traces import outputs as written_outputs
from skillfactory.traces.build import TraceConfig, build_traces
from skillfactory.traces.formats import FORMATS
from skillfactory.traces.raw import RawColumns, load_raw

RESPONSE = "model_responses__mutated_prompts"
CORRECT = "model_responses__mutated_prompts__eval_is_correct"
EXTRACTED = "model_responses__mutated_prompts__eval_extracted_answers"
REFLECTIONS = "model_responses__mutated_prompts_reflection"
VARIANTS = ("original", "plan_and_execute", "alternatively", "rephrase", "other")
WORDS = ("step", "check", "×", "÷", "−", "naïve", "日本", "😀", '"quoted"', "back\\slash", "tab\there", "\x01",
         "\x1f", "\u2028", "\x7f", "ı", "İ", "\u00a0", "K", "ſ")
OUTPUTS = ("traces.jsonl", "summary.json", "llamafactory/traces.json", "llamafactory/dataset_info.json",
           "dataset/state.json", "dataset/dataset_info.json")  # + every dataset/*.arrow


def _response(rng: random.Random, q: int, r: int, value: str) -> str | None:
    words = " ".join(rng.choice(WORDS) for _ in range(rng.randint(0, 4)))
    body = f"[q{q} r{r}] {words} = {value}\n<answer>{value}</answer>"
    kind = rng.random()
    if kind < 0.70:
        return body
    return rng.choice([
        f"<think>\nreasoning {words}\n</think>\n\n{body}", f"reasoning {words}\n</think>\n{body}",
        f"<think>\n\n</think>\n\n{body}", f"{body} <sample>", f"{body}<|im_end|>", f"<｜User｜>{body}",
        f"{body}</think> late", "", "   \n", "\u00a0", "\x1c", "\u3000\t", None,
    ])


def _reflection(rng: random.Random, q: int, r: int, k: int, verdict: bool) -> str | None:
    word = "Correct" if verdict else "Incorrect"
    words = " ".join(rng.choice(WORDS) for _ in range(rng.randint(0, 3)))
    head = f"Check {k} of q{q} r{r}: {words}."
    if rng.random() < 0.6:
        return f"{head} <verdict>{word}</verdict>"
    return rng.choice([
        f"{head} <VERDICT> {word.lower()} </Verdict>", f"{head} <verdict>\u00a0{word}\u2003</verdict>",
        f"{head} <verdict>\x0b{word}\x1c</verdict>", f"{head} <verdıct>{word}</verdict>",
        f"{head} <verdict>{word.replace('I', 'İ')}</verdict>", f"{head} <verdict>{word}</verdıct>",
        f"{head} <verdict>{word}</verdict> <verdict>{word}</verdict>", f"{head} <verdict>maybe",
        f"{head} <verdict>{word.replace('C', 'K')}</verdict>", f"{head} no verdict", None,
        f"<think>\nweighing {words}\n</think>\n\n{head} <verdict>{word}</verdict>",
        f"{head} <verdict>{word}</verdict><|endoftext|>", f"{head} <reflect> <verdict>{word}</verdict>",
        f"{head}\n<verdict>\n{word}\n</verdict>\n", f"{head}<verdict>{word}</verdict>" + "ı" * 3,
    ])


def golden_rows(seed: int, n_questions: int = 40) -> list[dict]:
    rng = random.Random(seed)
    rows = []
    for q in range(n_questions):
        a, b = rng.randint(1, 30), rng.randint(1, 30)
        question = f"What is {a} plus {b}?" if q % 9 else "What is 1 plus 1?"  # one text, several golds
        gold = str(a + b)
        p_correct = rng.choice([0.0, 0.3, 0.6, 0.9, 1.0])
        for r in range(rng.randint(0, 14)):
            correct = rng.random() < p_correct
            value = gold if correct else str(a + b + rng.choice([-2, 1, 5]))
            refls = [_reflection(rng, q, r, k, correct if rng.random() < 0.7 else not correct)
                     for k in range(rng.randint(0, 4))]
            rows.append({
                "question": question, "answer": gold, "prompt_variant": rng.choice(VARIANTS),
                RESPONSE: rng.choice([[_response(rng, q, r, value)]] * 9 + [[]]),
                CORRECT: [correct],
                EXTRACTED: [value if rng.random() < 0.9 else None],
                REFLECTIONS: refls if rng.random() < 0.95 else None,
            })
    rng.shuffle(rows)
    return rows


def write_inputs(tmp_path) -> dict[str, tuple]:
    """file name -> (golden key, file, column overrides, configs) of the golden inputs."""
    rows = golden_rows(5)
    plain = tmp_path / "plain.parquet"
    pq.write_table(pa.Table.from_pylist(rows), plain)
    jsonl = tmp_path / "plain.jsonl"
    jsonl.write_text("".join(json.dumps(r, ensure_ascii=bool(i % 2)) + "\n" for i, r in enumerate(rows)))
    other = [{"qid": f"id{i % 7}" if i % 3 else r["question"], "q": r["question"], "answer": r["answer"],
              "prompt_variant": r["prompt_variant"], "completions": r[RESPONSE], CORRECT: [int(r[CORRECT][0])],
              EXTRACTED: r[EXTRACTED], "refl": [r[REFLECTIONS] or [], ["ignored"]]} for i, r in enumerate(rows)]
    nested = tmp_path / "nested.parquet"
    pq.write_table(pa.Table.from_pylist(other), nested, row_group_size=97)
    cols = RawColumns(question="q", response="completions", reflections="refl", question_id="qid")
    large = tmp_path / "large.parquet"  # more rows than one read batch, more traces than one dataset batch
    pq.write_table(pa.Table.from_pylist(golden_rows(6, n_questions=700)), large, row_group_size=1500)
    none = tmp_path / "none.jsonl"  # nothing usable: no traces at all
    none.write_text("".join(json.dumps({**r, CORRECT: [False]}) + "\n" for r in rows[:30]))
    both = ("all", "mix")
    return {"plain.parquet": ("plain", plain, None, both), "plain.jsonl": ("plain", jsonl, None, both),
            "nested.parquet": ("nested", nested, cols, both), "large.parquet": ("large", large, None, ("star",)),
            "none.jsonl": ("none", none, None, ("all",))}


CONFIGS = {
    "all": dict(formats=list(FORMATS), max_responses=5, repeats=2, seed=0),
    "mix": dict(formats={"*C_full": 2.0, "*C*IC": 1.0, "*CC": 1.0, "random": 0.5}, max_responses=4,
                distinct_variants=True, repeats=2, seed=3),
    "star": dict(formats=["*C_full"], max_responses=5, seed=0),  # the published recipe
}

# sha256 (first 16 hex digits) of each output, recorded with the row-by-row reader before the fast one
# (state.json's since its fingerprint is hashed line by line: the JSONL and the Arrow files are unchanged).
GOLDEN: dict[str, dict[str, str]] = {
    "plain/all": {
        "dataset/data-00000-of-00001.arrow": "380f21a900daa152",
        "dataset/dataset_info.json": "db2798635164d522",
        "dataset/state.json": "4bb53a5556ade7e1",
        "llamafactory/dataset_info.json": "62c1fa0b89e9fee9",
        "llamafactory/traces.json": "618af2e0edd434d3",
        "summary.json": "47df1f76974de9a3",
        "traces.jsonl": "0720e88716706cd8",
    },
    "plain/mix": {
        "dataset/data-00000-of-00001.arrow": "67b10d9962ca54d4",
        "dataset/dataset_info.json": "db2798635164d522",
        "dataset/state.json": "60ad7f327819e533",
        "llamafactory/dataset_info.json": "62c1fa0b89e9fee9",
        "llamafactory/traces.json": "833223bee166aaf9",
        "summary.json": "e28b34329d202551",
        "traces.jsonl": "1ff05c1fc28a8142",
    },
    "nested/all": {
        "dataset/data-00000-of-00001.arrow": "9e7ffa11c1bebda6",
        "dataset/dataset_info.json": "db2798635164d522",
        "dataset/state.json": "9b7c841893e4d43c",
        "llamafactory/dataset_info.json": "62c1fa0b89e9fee9",
        "llamafactory/traces.json": "97f15a7c9b3db549",
        "summary.json": "899baf685474ced9",
        "traces.jsonl": "081cb80b4dc006c0",
    },
    "nested/mix": {
        "dataset/data-00000-of-00001.arrow": "8c423d073c3a677d",
        "dataset/dataset_info.json": "db2798635164d522",
        "dataset/state.json": "47b9875ca3f42031",
        "llamafactory/dataset_info.json": "62c1fa0b89e9fee9",
        "llamafactory/traces.json": "41866896b02265ed",
        "summary.json": "2d6549f7618b7b33",
        "traces.jsonl": "e2b9f26c71065ea9",
    },
    "large/star": {
        "dataset/data-00000-of-00001.arrow": "4dd4bd72c8032d9b",
        "dataset/dataset_info.json": "db2798635164d522",
        "dataset/state.json": "66b2600433a5ca55",
        "llamafactory/dataset_info.json": "62c1fa0b89e9fee9",
        "llamafactory/traces.json": "101542bf53586e30",
        "summary.json": "82e1f74b4d1f4520",
        "traces.jsonl": "11a36b5d87c04fc4",
    },
    "none/all": {
        "dataset/dataset_info.json": "db2798635164d522",
        "dataset/state.json": "fdfacd88a874e2b0",
        "llamafactory/dataset_info.json": "62c1fa0b89e9fee9",
        "llamafactory/traces.json": "3fbbd4c6d7613039",
        "summary.json": "8bb55455eac2b508",
        "traces.jsonl": "e3b0c44298fc1c14",
    },
}


def digests(out) -> dict[str, str]:
    names = [*OUTPUTS, *(f"dataset/{p.name}" for p in (out / "dataset").glob("*.arrow"))]
    return {name: hashlib.sha256((out / name).read_bytes()).hexdigest()[:16] for name in sorted(names)}


@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_outputs_are_byte_identical_to_the_recorded_ones(tmp_path, config):
    for name, (key, path, cols, configs) in write_inputs(tmp_path).items():
        if config not in configs:
            continue
        out = tmp_path / f"out_{name}_{config}"
        cfg = TraceConfig(raw=str(path), out=str(out), columns=cols or RawColumns(), **CONFIGS[config])
        build_traces(cfg, progress=False)
        assert digests(out) == GOLDEN[f"{key}/{config}"], name


@pytest.mark.skipif(sys.platform != "linux", reason="worker processes are forked on Linux only")
@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_worker_processes_give_the_recorded_bytes(tmp_path, monkeypatch, config):
    monkeypatch.setattr(build_module, "ENCODE_EVERY", 7)  # many small chunks, spread over the workers
    for name, (key, path, cols, configs) in write_inputs(tmp_path).items():
        if config not in configs:
            continue
        out = tmp_path / f"out_{name}_{config}"
        cfg = TraceConfig(raw=str(path), out=str(out), columns=cols or RawColumns(), **CONFIGS[config])
        build_traces(cfg, progress=False, workers=3)
        assert digests(out) == GOLDEN[f"{key}/{config}"], name
        assert json.loads((out / "manifest.json").read_text())["workers"] == 3


@pytest.mark.skipif(sys.platform != "linux", reason="worker processes are forked on Linux only")
@pytest.mark.parametrize("outputs", [["dataset"], ["jsonl", "llamafactory"]])
def test_outputs_written_alone_give_the_recorded_bytes(tmp_path, monkeypatch, outputs):
    monkeypatch.setattr(build_module, "ENCODE_EVERY", 7)
    for name, (key, path, cols, configs) in write_inputs(tmp_path).items():
        for workers in (1, 3):
            out = tmp_path / f"out_{name}_{workers}"
            cfg = TraceConfig(raw=str(path), out=str(out), columns=cols or RawColumns(), outputs=outputs,
                              **CONFIGS[configs[0]])
            build_traces(cfg, progress=False, workers=workers)
            where = [WRITTEN[o] for o in outputs]
            wanted = {k: v for k, v in GOLDEN[f"{key}/{configs[0]}"].items()
                      if k == "summary.json" or k.split("/")[0] in where}
            assert digests_of(out) == wanted, (name, workers)


WRITTEN = written_outputs.OUTPUTS  # output name -> its file or folder


def digests_of(out) -> dict[str, str]:
    """Digests of every file of a build but its config and manifest."""
    return {str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest()[:16]
            for p in sorted(out.rglob("*")) if p.is_file() and p.name not in ("config.yaml", "manifest.json")}


def test_batch_size_does_not_change_the_pools(tmp_path, monkeypatch):
    _, path, _, _ = write_inputs(tmp_path)["large.parquet"]
    whole = load_raw(path)
    monkeypatch.setattr(raw_module, "BATCH_ROWS", 13)
    small = load_raw(path)
    def shape(corpus):  # the attempts without where their texts are kept
        return [[(*a[:5], a.refl_index) for a in u.pool.attempts] for u in corpus.units]

    assert shape(whole) == shape(small)
    assert whole.attempts == small.attempts and whole.reflections == small.reflections
    texts = [(whole.sample_text(a.text_ref), [whole.reflection_text(r) for r in a.refl_refs])
             for u in whole.units for a in u.pool.attempts]
    assert texts == [(small.sample_text(a.text_ref), [small.reflection_text(r) for r in a.refl_refs])
                     for u in small.units for a in u.pool.attempts]
