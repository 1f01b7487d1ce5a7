"""records.iter_jsonl: line numbers in errors, a torn last line skipped, and the file streamed, not read whole."""

from __future__ import annotations

import json
import tracemalloc

import pytest

from skillfactory.records import RecordError, iter_jsonl


def test_blank_lines_are_skipped_and_a_bad_line_is_named_by_its_number(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text('{"a": 1}\n\n{"a": 2}\n{"a": \n{"a": 4}\n')
    rows = iter_jsonl(path)
    assert next(rows) == {"a": 1} and next(rows) == {"a": 2}
    with pytest.raises(RecordError, match=r"x\.jsonl:4: not valid JSON"):
        next(rows)


def test_numbered_records_carry_their_line_in_the_file(tmp_path):
    from skillfactory.records import Trace

    path = tmp_path / "x.jsonl"
    path.write_text('\n{"a": 1}\n\n\n{"a": 2}\n')
    assert list(iter_jsonl(path, numbered=True)) == [(2, {"a": 1}), (5, {"a": 2})]
    trace = Trace(id="t", question_id="q", format="*C", messages=[{"role": "user", "content": "q"}], n_attempts=1,
                  sample_ids=[], reflection_ids=[], final_correct=True)
    path.write_text("\n" + trace.model_dump_json() + "\n")
    assert list(iter_jsonl(path, Trace, numbered=True)) == [(2, trace)]


def test_only_a_torn_last_line_is_skipped(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text('{"a": 1}\n{"a": 2}\n{"a": "to')  # an append cut short by a crash
    assert list(iter_jsonl(path)) == [{"a": 1}, {"a": 2}]
    with pytest.raises(RecordError, match=r":3: not valid JSON"):
        list(iter_jsonl(path, tolerate_torn_tail=False))
    path.write_text('{"a": "to\n{"a": 2}\n')  # the same bytes with a newline after them are no torn write
    with pytest.raises(RecordError, match=r":1: not valid JSON"):
        list(iter_jsonl(path))


def test_the_file_is_streamed_not_read_whole(tmp_path):
    path = tmp_path / "big.jsonl"
    line = json.dumps({"text": "x" * 10_000}) + "\n"
    path.write_text(line * 2_000)  # 20 MB
    tracemalloc.start()
    try:
        rows = iter_jsonl(path)
        assert len(next(rows)["text"]) == 10_000
        assert sum(1 for _ in rows) == 1_999
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2_000_000  # a few lines at a time (reading the file whole took 40 MB: its bytes and their lines)
