"""The published raw layout as input: parquet and JSONL round trips, column overrides, bad input errors."""

from __future__ import annotations

import hashlib
import json
import threading

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from trace_helpers import as_in_trace, raw_rows

from skillfactory.errors import SkillFactoryError
from skillfactory.prompting import parse_verdict
from skillfactory.records import Trace, read_jsonl
from skillfactory.traces.build import TraceConfig, build_traces
from skillfactory.traces.clean import TextScreen
from skillfactory.traces.formats import FORMATS
from skillfactory.traces import raw as raw_module
from skillfactory.traces import raw_batches
from skillfactory.traces.raw import RawColumns
from skillfactory.traces.sources import TraceInputError

RESPONSE = "model_responses__mutated_prompts"
CORRECT = "model_responses__mutated_prompts__eval_is_correct"
EXTRACTED = "model_responses__mutated_prompts__eval_extracted_answers"
REFLECTIONS = "model_responses__mutated_prompts_reflection"


def write_parquet(path, rows):
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def write_jsonl_rows(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def run(tmp_path, raw, name="out", **kw):
    cfg = TraceConfig(raw=str(raw), out=str(tmp_path / name), **{"formats": list(FORMATS), **kw})
    return build_traces(cfg, progress=False), tmp_path / name


def test_parquet_round_trip(tmp_path):
    rows = raw_rows(11, n_questions=20)
    summary, out = run(tmp_path, write_parquet(tmp_path / "raw.parquet", rows))
    traces = read_jsonl(out / "traces.jsonl", Trace)
    assert summary["traces"] == len(traces) > 20
    assert summary["attempts"]["total"] == len(rows)
    responses = {as_in_trace(r[RESPONSE][0]): r for r in rows}
    questions = {r["question"] for r in rows}
    for t in traces:
        assert t.messages[0]["content"] in questions  # the question column, as written
        text = t.messages[1]["content"]
        blocks = text.split("<sample>\n")[1:]
        assert len(blocks) == t.n_attempts
        for block in blocks:
            response, _, rest = block.partition("\n</sample>\n")
            row = responses[response]
            assert row["question"] == t.messages[0]["content"]
            if t.format != "no_reflection":
                refl = rest.split("<reflect>\n", 1)[1].split("\n</reflect>", 1)[0]
                assert refl in [as_in_trace(x) for x in row[REFLECTIONS]]
                assert parse_verdict(refl) == row[CORRECT][0]
        if t.format not in ("random",):
            final = text.rsplit("<answer>\n", 1)[1].split("\n</answer>")[0]
            last = responses[blocks[-1].partition("\n</sample>\n")[0]]
            assert last[CORRECT][0] and final == last[EXTRACTED][0]


def test_jsonl_and_parquet_give_identical_traces_and_columns_can_be_renamed(tmp_path):
    rows = raw_rows(12)
    _, a = run(tmp_path, write_parquet(tmp_path / "raw.parquet", rows), "a")
    _, b = run(tmp_path, write_jsonl_rows(tmp_path / "raw.jsonl", rows), "b")
    renamed = [{("completions" if k == RESPONSE else "q" if k == "question" else k): v for k, v in r.items()}
               for r in rows]
    _, c = run(tmp_path, write_parquet(tmp_path / "renamed.parquet", renamed), "c",
               columns=RawColumns(response="completions", question="q"))
    assert (a / "traces.jsonl").read_bytes() == (b / "traces.jsonl").read_bytes() == (c / "traces.jsonl").read_bytes()


def test_reflections_as_list_of_lists_and_integer_correctness(tmp_path):
    rows = raw_rows(13)
    variant = [{**r, REFLECTIONS: [r[REFLECTIONS]], CORRECT: [int(r[CORRECT][0])]} for r in rows]
    _, a = run(tmp_path, write_jsonl_rows(tmp_path / "a.jsonl", rows), "a")
    _, b = run(tmp_path, write_jsonl_rows(tmp_path / "b.jsonl", variant), "b")
    assert (a / "traces.jsonl").read_bytes() == (b / "traces.jsonl").read_bytes()


@pytest.mark.parametrize("fmt", ["parquet", "jsonl"])
def test_missing_column_is_named(tmp_path, fmt):
    rows = [{k: v for k, v in r.items() if k != EXTRACTED} for r in raw_rows(14, n_questions=3)]
    path = tmp_path / f"raw.{fmt}"
    write_parquet(path, rows) if fmt == "parquet" else write_jsonl_rows(path, rows)
    with pytest.raises(SkillFactoryError) as e:
        run(tmp_path, path)
    assert EXTRACTED in str(e.value) and "raw." + fmt in str(e.value)


@pytest.mark.parametrize("column, value, expected", [
    (CORRECT, ["yes"], "booleans"),
    ("question", 7, "string"),
    (REFLECTIONS, [3, 4], "list of strings"),
    (RESPONSE, [5], "list of strings"),
])
def test_wrong_type_is_named_with_column_file_and_row(tmp_path, column, value, expected):
    rows = raw_rows(15, n_questions=3)
    rows[2][column] = value
    path = write_jsonl_rows(tmp_path / "raw.jsonl", rows)
    with pytest.raises(SkillFactoryError) as e:
        run(tmp_path, path)
    msg = str(e.value)
    assert column in msg and "raw.jsonl" in msg and "line 3" in msg and expected in msg


def test_empty_and_unreadable_files(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(SkillFactoryError, match="empty.jsonl: no rows"):
        run(tmp_path, empty)
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"not parquet")
    with pytest.raises(SkillFactoryError, match="bad.parquet: not a readable parquet"):
        run(tmp_path, bad)
    with pytest.raises(SkillFactoryError, match="file not found"):
        run(tmp_path, tmp_path / "nope.parquet")


def test_python_only_characters_are_exactly_where_python_re_and_the_re2_patterns_differ():
    """The columnar verdicts use RE2 with ASCII case classes; Python's case-insensitive ``re`` also folds some
    non-ASCII letters onto the tags' letters and counts Unicode spaces as ``\\s``: those go to Python."""
    import re

    import pyarrow.compute as pc

    from skillfactory.traces import raw_kernels

    letters, space = re.compile("(?i)[verdicton]"), re.compile(r"\s")
    odd = {chr(c) for c in range(128, 0x110000)
           if not 0xD800 <= c < 0xE000 and (space.fullmatch(chr(c)) or letters.fullmatch(chr(c)))}
    assert odd == set(raw_kernels.PYTHON_ONLY)
    ascii_spaces = [chr(c) for c in range(128) if space.fullmatch(chr(c))]
    matched = pc.match_substring_regex(pa.array([chr(c) for c in range(128)]),
                                       f"^{raw_kernels.WS[:-1]}$").to_pylist()
    assert [chr(c) for c in range(128) if matched[c]] == ascii_spaces


class _OwnScreen(TextScreen):
    """A screen the columnar reader cannot assume anything about: every text goes through its methods."""

    def refusal(self, text):
        return "tag_in_text" if "q1 " in text else super().refusal(text)


@pytest.mark.parametrize("seed, screen", [(21, None), (22, TextScreen(["naïve", "[q3", "×"])), (23, _OwnScreen())])
def test_columnar_reader_gives_the_pools_of_the_row_reader(tmp_path, monkeypatch, seed, screen):
    from test_trace_raw_golden import golden_rows

    from skillfactory.traces import raw
    from skillfactory.traces.raw import load_raw

    rows = golden_rows(seed, n_questions=60)
    path = write_parquet(tmp_path / "raw.parquet", rows)
    kw = {"screen": screen} if screen is not None else {}

    def shape(corpus):
        return ([(u.question_id, u.prompt, [(*a[:5], a.refl_index, corpus.sample_text(a.text_ref),
                                            [corpus.reflection_text(r) for r in a.refl_refs]) for a in u.pool.attempts])
                 for u in corpus.units], corpus.attempts, corpus.reflections)

    columnar = shape(load_raw(path, **kw))
    monkeypatch.setattr(raw._Reader, "columnar", lambda self, batch: None)  # every batch row by row
    assert shape(load_raw(path, **kw)) == columnar


def test_a_raw_build_does_not_import_datasets(tmp_path):
    import subprocess
    import sys

    path = write_parquet(tmp_path / "raw.parquet", raw_rows(16, n_questions=5))
    code = ("import sys\nfrom skillfactory.traces.build import TraceConfig, build_traces\n"
            f"build_traces(TraceConfig(raw={str(path)!r}, out={str(tmp_path / 'out')!r}), progress=False)\n"
            "assert 'datasets' not in sys.modules, 'datasets was imported'\n")
    subprocess.run([sys.executable, "-c", code], check=True)
    assert (tmp_path / "out" / "dataset" / "state.json").exists()


@settings(max_examples=300, deadline=None)
@given(question=st.text(st.characters(exclude_categories=("Cs",))),
       answer=st.one_of(st.none(), st.text(st.characters(exclude_categories=("Cs",))), st.integers(-2**80, 2**80)))
def test_question_ids_are_the_hash_of_what_json_writes(question, answer):
    key = json.dumps([question, answer], ensure_ascii=False, default=str).encode()
    assert raw_module._hashed_id(question, answer) == "raw/" + hashlib.sha256(key).hexdigest()[:16]
    assert raw_module._hashed_id(question, [answer]) == "raw/" + hashlib.sha256(
        json.dumps([question, [answer]], ensure_ascii=False, default=str).encode()).hexdigest()[:16]


def _source(n, fail_at=None, closed=None):
    try:
        for i in range(n):
            if i == fail_at:
                raise TraceInputError(f"bad row {i}")
            yield i
    finally:
        if closed is not None:
            closed.append(threading.current_thread().name)


def test_batches_taken_ahead_in_a_thread_come_in_order_errors_after_the_items_before():
    assert list(raw_batches.Prefetched(_source(50))) == list(range(50))
    got = []
    with pytest.raises(TraceInputError, match="bad row 7"):
        for i in raw_batches.Prefetched(_source(50, fail_at=7)):
            got.append(i)
    assert got == list(range(7))


def test_stopping_early_stops_the_thread_and_closes_the_source():
    closed: list[str] = []
    before = threading.active_count()
    items = raw_batches.Prefetched(_source(10_000, closed=closed))
    assert [next(items) for _ in range(3)] == [0, 1, 2]
    items.close()
    assert threading.active_count() == before and closed == ["raw-prefetch"]
    raw_batches.Prefetched(_source(10_000, closed=closed)).close()  # never taken from: stopped all the same
    assert threading.active_count() == before and closed == ["raw-prefetch"] * 2
