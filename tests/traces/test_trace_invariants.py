"""Invariants of every trace over many random inputs (seeded loops over synthetic samples/reflections).

Each trace is parsed back from its text and checked against the input records, independently of how the
builder chose it: verdicts equal truths, C-format answers verify, glue matches the attempt before it, the
special formats have their shape, distinct variants hold, and questions that cannot give a format are
skipped and counted.
"""

from __future__ import annotations

import random
import re
from collections import Counter

import pytest
from trace_helpers import as_in_trace, make_records, trace_worthy

from skillfactory.evaluation.skills import count_skills
from skillfactory.prompting import parse_verdict
from skillfactory.records import write_jsonl
from skillfactory.tasks import task_for
from skillfactory.traces.build import TraceConfig, traces_for_unit
from skillfactory.traces.formats import CORRECT_FORMATS, FORMATS
from skillfactory.traces.phrases import POOLS, classify_glue
from skillfactory.traces.sources import load_records
from skillfactory.traces.summary import Tally

BLOCK = re.compile(r"<sample>\n(.*?)\n</sample>\n(?:<reflect>\n(.*?)\n</reflect>\n)?(.*?)(?=<sample>|\Z)", re.S)
SHAPE = re.compile(r"\A<think>\n(.*)</think>\n\n(.*?)\n\n<answer>\n(.*)\n</answer>\Z", re.S)


def parse(assistant: str) -> tuple[list[tuple[str, str | None, str]], str, str]:
    """([(sample text, reflection text or None, glue after)], ending phrase, final answer)."""
    m = SHAPE.match(assistant)
    assert m, assistant[:200]
    body, ending, final = m.groups()
    blocks = [(s, r, g.strip()) for s, r, g in BLOCK.findall(body)]
    assert "".join(BLOCK.sub("", body).split()) == "", "text outside blocks"
    return blocks, ending, final


def usable(sample, reflections) -> bool:
    """Independent re-statement of "usable attempt" (see sources.py)."""
    if sample.finish_reason == "skipped" or not trace_worthy(sample.text):
        return False
    if sample.correct and sample.extracted is None:
        return False
    return any(r.kept and r.verdict == r.truth == sample.correct and trace_worthy(r.text)
               for r in reflections.get(sample.id, []))


def build_all(tmp_path, seed, cfg_kw):
    samples, reflections = make_records(seed, n_questions=12)
    s, r = tmp_path / f"s{seed}.jsonl", tmp_path / f"r{seed}.jsonl"
    write_jsonl(s, samples)
    write_jsonl(r, reflections)
    cfg = TraceConfig(samples=str(s), reflections=str(r), out=str(tmp_path / "out"), seed=seed, **cfg_kw)
    corpus = load_records(s, r)
    tally = Tally()
    traces = []
    try:
        for unit in corpus.units:
            tally.start_question()
            traces += list(traces_for_unit(unit, cfg, corpus, tally))
            tally.end_question()
    finally:
        corpus.close()
    return samples, reflections, cfg, traces, tally


@pytest.mark.parametrize("seed", range(24))
def test_trace_invariants(tmp_path, seed):
    rng = random.Random(seed)
    cfg_kw = dict(formats=list(FORMATS), max_responses=rng.randint(3, 6), repeats=rng.randint(1, 2),
                  distinct_variants=rng.random() < 0.5)
    samples, reflections, cfg, traces, tally = build_all(tmp_path, seed, cfg_kw)
    by_id = {s.id: s for s in samples}
    refl_by_id = {f"{r.sample_id}|r{r.index}": r for r in reflections}
    refl_of: dict[str, list] = {}
    for r in reflections:
        refl_of.setdefault(r.sample_id, []).append(r)

    for t in traces:
        blocks, ending, final = parse(t.messages[1]["content"])
        fmt = t.format
        atts = [by_id[sid] for sid in t.sample_ids]
        q = atts[0].question
        assert t.messages[0] == {"role": "user", "content": task_for(q).prompt(q, "original")}
        assert len(blocks) == t.n_attempts == len(atts) <= cfg.max_responses
        assert ending in POOLS["ending"]
        counts = count_skills(t.messages[1]["content"])
        assert counts.attempts == t.n_attempts
        assert counts.reflections == (0 if fmt == "no_reflection" else t.n_attempts)
        for i, ((text, refl, glue), s) in enumerate(zip(blocks, atts)):
            assert s.question.id == t.question_id and usable(s, refl_of)
            assert text == as_in_trace(s.text)  # the response as the model wrote it, a leading <think> unwrapped
            if fmt == "no_reflection":
                assert not refl and t.reflection_ids == []
            else:
                rec = refl_by_id[t.reflection_ids[i]]
                assert rec.sample_id == s.id and rec.kept and refl == as_in_trace(rec.text)
                assert parse_verdict(refl) == s.correct  # every verdict equals its attempt's truth
            last = i == len(blocks) - 1
            if last:
                assert classify_glue(glue) == ("confirm" if fmt == "*CC" else None) or glue == ""
                assert (glue != "") == (fmt == "*CC")
            elif fmt == "no_reflection":
                assert classify_glue(glue) == "generic"
            elif fmt == "*C*IC" and i == len(blocks) - 2:
                assert classify_glue(glue) == "backtrack"
            else:  # glue chosen by the attempt before it
                assert classify_glue(glue) == ("after_correct" if s.correct else "after_incorrect")
        assert final == (atts[-1].extracted or "")
        assert t.final_correct == atts[-1].correct
        if fmt in CORRECT_FORMATS:
            assert task_for(q).check(q, t.messages[1]["content"]).correct  # the final <answer> verifies
        if fmt == "*C*IC":
            assert not atts[-2].correct and atts[-1].correct
            assert t.sample_ids[-1] in t.sample_ids[:-2]  # restates an earlier correct attempt
        if fmt == "*CC":
            assert atts[-1].correct and atts[-2].correct and t.sample_ids[-1] != t.sample_ids[-2]
        distinct = list(dict.fromkeys(t.sample_ids))
        if fmt != "*C*IC":
            assert len(distinct) == len(t.sample_ids)
        if cfg.distinct_variants:
            variants = [by_id[sid].variant for sid in distinct]
            assert len(set(variants)) == len(variants)

    # questions that cannot give a trace are skipped and counted, never a crash
    questions = {s.question.id for s in samples}
    good = {s.question.id for s in samples if s.correct and usable(s, refl_of)}
    bad = {s.question.id for s in samples if not s.correct and usable(s, refl_of)}
    made = Counter((t.question_id, t.format) for t in traces)
    for qid in questions:
        for fmt in FORMATS:
            assert bool(made[(qid, fmt)]) <= (qid in good)
        assert bool(made[(qid, "*C*IC")]) <= (qid in bad)
        if qid in good:
            assert made[(qid, "0C")] == cfg.repeats  # a usable correct attempt always gives 0C
        if qid in good and qid in bad and not cfg.distinct_variants:
            assert made[(qid, "*C*IC")] == cfg.repeats
    assert not any(c["final_answer_fails_check"] for c in tally.skipped.values())
    no_correct = len(questions - good)
    assert tally.dropped.get("no_correct_attempt", 0) == no_correct
    for fmt in FORMATS:
        expected = no_correct * cfg.repeats * (cfg.max_responses if fmt in ("*C_full", "no_reflection") else 1)
        assert tally.skipped[fmt]["no_correct_attempt"] == expected
    assert tally.skipped["*C*IC"]["no_incorrect_attempt"] == len(good - bad) * cfg.repeats


def test_full_format_gives_every_n_and_no_reflection_pairs_with_it(tmp_path):
    _, _, cfg, traces, _ = build_all(tmp_path, 3, dict(formats=["*C_full", "no_reflection"], max_responses=4))
    full = {t.id.replace("*C_full", "X"): t for t in traces if t.format == "*C_full"}
    ablation = {t.id.replace("no_reflection", "X"): t for t in traces if t.format == "no_reflection"}
    assert full and full.keys() == ablation.keys()
    for key, t in full.items():
        assert t.n_attempts == int(key.rsplit("|n", 1)[1])
        assert ablation[key].sample_ids == t.sample_ids  # same attempts, without the reflections


def test_format_mix_draws_one_format_per_question_and_repeat(tmp_path):
    _, _, cfg, traces, tally = build_all(tmp_path, 5, dict(formats={"*C": 1.0, "*CC": 3.0}, repeats=3))
    per = Counter((t.question_id, t.id.split("|")[-1]) for t in traces)
    assert per and max(per.values()) == 1
    assert {t.format for t in traces} <= {"*C", "*CC"}
