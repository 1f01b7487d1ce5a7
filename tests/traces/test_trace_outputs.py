"""The writers: each line is what pydantic / json.dumps wrote, and the dataset is, byte for byte, what
pyarrow's JSON reader + ``datasets``' ``save_to_disk`` make of traces.jsonl (the route before), and loads."""

from __future__ import annotations

import hashlib
import json
import random

import pyarrow as pa
import pyarrow.json as pj
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from skillfactory.records import Trace
from skillfactory.traces import hf_dataset, outputs
from skillfactory.traces.outputs import TraceWriter, encode, sharegpt, sharegpt_json
from skillfactory.traces.sources import TraceInputError

TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=40)


def trace(rng: random.Random, i: int, size: int = 300) -> Trace:
    words = ["step", "×", "naïve", "日本", "😀", '"q"', "\\", "\t", "\x01", "\u2028", "\x7f", "\n"]
    body = " ".join(rng.choice(words) for _ in range(rng.randint(0, size)))
    n = rng.randint(1, 5)
    return Trace(id=f"q{i}|*C_full|r0|n{n}", question_id=f"q{i // 3}", format=rng.choice(["*C_full", "*CC"]),
                 messages=[{"role": "user", "content": f"question {i}?"}, {"role": "assistant", "content": body}],
                 n_attempts=n, sample_ids=[f"q{i}|original|{k}" for k in range(n)],
                 reflection_ids=[f"q{i}|original|{k}|r0" for k in range(rng.randint(0, n))],
                 final_correct=rng.random() < 0.8)


def datasets_route(jsonl, out_dir, block: int, shard_bytes: int, fingerprint: str) -> None:
    """The dataset writer before the streaming one: read the JSONL back, save with ``datasets``."""
    from datasets import Dataset
    from datasets.table import InMemoryTable

    schema = hf_dataset._schema()
    lines = jsonl.read_bytes().splitlines(keepends=True)
    if not lines:
        table = schema.empty_table()
    else:
        read = pj.ReadOptions(block_size=max(block, 2 * max(map(len, lines))))
        parse = pj.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore")
        table = pj.read_json(jsonl, read_options=read, parse_options=parse).select(schema.names)
    table = table.cast(pa.schema(schema))
    Dataset(InMemoryTable(table), fingerprint=fingerprint).save_to_disk(str(out_dir), max_shard_size=shard_bytes)


def line_fingerprint(jsonl) -> str:
    """The dataset's fingerprint as documented: the sha256 of its JSONL lines' sha256 digests."""
    lines = jsonl.read_bytes().splitlines(keepends=True)
    return hashlib.sha256(b"".join(hashlib.sha256(line).digest() for line in lines)).hexdigest()[:16]


CASES = {  # name: (traces, text size, JSON block, shard bytes, batch bytes)
    "one_chunk": (1300, 300, 1 << 22, 500 * 10**6, 100 * 10**6),
    "chunks": (2500, 300, 150_000, 500 * 10**6, 100 * 10**6),  # batches across and within reader chunks
    "shards": (2300, 300, 150_000, 1_000_000, 100 * 10**6),
    "small_batches": (900, 300, 150_000, 500 * 10**6, 60_000),
    "long_lines": (300, 3000, 16_000, 500 * 10**6, 100 * 10**6),  # a line longer than half a block
    "empty": (0, 0, 1 << 22, 500 * 10**6, 100 * 10**6),
}


def layout_case(monkeypatch, case: str) -> list[Trace]:
    """The traces of a CASES entry, with the writer's layout limits set to its figures."""
    n, size, block, shard_bytes, batch_bytes = CASES[case]
    monkeypatch.setattr(hf_dataset, "JSON_BLOCK", block)
    monkeypatch.setattr(hf_dataset, "MAX_SHARD_BYTES", shard_bytes)
    monkeypatch.setattr(hf_dataset, "MAX_BATCH_BYTES", batch_bytes)
    rng = random.Random(n)
    return [trace(rng, i, size) for i in range(n)]


@pytest.mark.parametrize("case", sorted(CASES))
def test_dataset_is_what_datasets_saves(tmp_path, monkeypatch, case):
    import datasets

    n, _, block, shard_bytes, batch_bytes = CASES[case]
    traces = layout_case(monkeypatch, case)
    monkeypatch.setattr(datasets.config, "MAX_ROW_GROUP_SIZE", batch_bytes)
    with TraceWriter(tmp_path / "out") as w:
        for t in traces:
            w.write(t)
    ours = tmp_path / "out" / "dataset"
    datasets_route(tmp_path / "out" / "traces.jsonl", tmp_path / "ref", block, shard_bytes,
                   line_fingerprint(tmp_path / "out" / "traces.jsonl"))
    names = sorted(p.name for p in (tmp_path / "ref").iterdir())
    assert sorted(p.name for p in ours.iterdir()) == names
    if case == "shards":
        assert len([x for x in names if x.endswith(".arrow")]) > 1
    for name in names:
        assert (ours / name).read_bytes() == (tmp_path / "ref" / name).read_bytes(), name

    if n:  # (datasets cannot load the 0-shard dataset it saves for no rows)
        ds = datasets.load_from_disk(str(ours))
        assert len(ds) == n
        assert ds[n - 1] == traces[-1].model_dump() and ds[0]["messages"] == traces[0].messages


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_dataset_written_alone_is_the_same_bytes(tmp_path, monkeypatch, case):
    """Without the JSONL (which the layouts that are cut again at the end were once read back from)."""
    traces = layout_case(monkeypatch, case)
    for name, which in (("all", tuple(outputs.OUTPUTS)), ("alone", ("dataset",))):
        with TraceWriter(tmp_path / name, which) as w:
            for t in traces:
                w.write(t)
    alone = sorted(p.name for p in (tmp_path / "alone").iterdir())
    assert alone == ["dataset"]
    names = sorted(p.name for p in (tmp_path / "all" / "dataset").iterdir())
    assert sorted(p.name for p in (tmp_path / "alone" / "dataset").iterdir()) == names
    for name in names:
        assert (tmp_path / "alone" / "dataset" / name).read_bytes() == (tmp_path / "all" / "dataset" / name).read_bytes()


def test_each_output_alone_is_the_same_bytes_and_the_old_others_go(tmp_path):
    rng = random.Random(3)
    traces = [trace(rng, i) for i in range(40)]
    with TraceWriter(tmp_path / "all") as w:
        for t in traces:
            w.write(t)
    whole = {p.relative_to(tmp_path / "all"): p.read_bytes() for p in (tmp_path / "all").rglob("*") if p.is_file()}
    out = tmp_path / "one"
    for which in (("jsonl",), ("llamafactory",), ("dataset", "llamafactory"), ("jsonl", "dataset", "llamafactory")):
        with TraceWriter(out, which) as w:  # into the same folder each time: the outputs of the last build only
            w.write_encoded(encode(traces, which))
        got = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
        wanted = {k: v for k, v in whole.items() if k.parts[0] in {outputs.OUTPUTS[o] for o in which}}
        assert got == wanted, which


def test_unknown_output_is_refused():
    with pytest.raises(ValueError, match="unknown output 'parquet'"):
        TraceWriter("x", ("dataset", "parquet"))


def test_dataset_rows_read_what_datasets_reads(tmp_path):
    import datasets

    rng = random.Random(5)
    traces = [trace(rng, i) for i in range(1500)]
    with TraceWriter(tmp_path, ("dataset",)) as w:
        for t in traces:
            w.write(t)
    rows = [r for batch in hf_dataset.dataset_rows(tmp_path / "dataset", size=400) for r in batch]
    assert rows == [t.model_dump() for t in traces] == list(datasets.load_from_disk(str(tmp_path / "dataset")))
    assert outputs.read_source(tmp_path) == tmp_path / "dataset"


@settings(max_examples=200, deadline=None)
@given(ids=st.lists(TEXT, min_size=3, max_size=3), contents=st.lists(TEXT, min_size=1, max_size=3),
       refl=st.lists(TEXT, max_size=3), correct=st.booleans(), n=st.integers(0, 99))
def test_lines_are_what_pydantic_and_json_write(ids, contents, refl, correct, n):
    roles = ["user", "assistant", "system"]
    fields = dict(id=ids[0], question_id=ids[1], format=ids[2], n_attempts=n, sample_ids=ids, reflection_ids=refl,
                  messages=[{"role": roles[i % 3], "content": c} for i, c in enumerate(contents)],
                  final_correct=correct)
    for t in (Trace(**fields), Trace.model_construct(**fields)):  # validated, and as the builder makes them
        part = encode([t, t])
        line = t.model_dump_json().encode() + b"\n"
        assert part.jsonl == line * 2 and part.line_lengths == [len(line)] * 2
        assert part.sharegpt == b",\n".join([json.dumps(sharegpt(t), ensure_ascii=False).encode()] * 2)
        assert sharegpt_json(t) == json.dumps(sharegpt(t), ensure_ascii=False).encode()


def test_a_failed_build_leaves_no_dataset_and_keeps_the_old(tmp_path):
    rng = random.Random(0)
    with TraceWriter(tmp_path) as w:
        w.write(trace(rng, 0))
    before = (tmp_path / "dataset" / "state.json").read_bytes()
    with pytest.raises(RuntimeError), TraceWriter(tmp_path) as w:
        w.write(trace(rng, 1))
        raise RuntimeError("interrupted")
    assert (tmp_path / "dataset" / "state.json").read_bytes() == before
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())


def test_files_are_synced_as_they_grow_and_end_the_same(tmp_path, monkeypatch):
    synced: list[int] = []
    fdatasync = outputs.os.fdatasync

    def counting(fd: int) -> None:
        synced.append(fd)
        fdatasync(fd)

    rng = random.Random(3)
    traces = [trace(rng, i) for i in range(400)]
    with TraceWriter(tmp_path / "whole") as w:
        for t in traces:
            w.write(t)
    monkeypatch.setattr(outputs, "SYNC_EVERY", 10_000)
    monkeypatch.setattr(outputs.os, "fdatasync", counting)
    with TraceWriter(tmp_path / "synced") as w:
        for t in traces:
            w.write(t)
    assert len(synced) >= 2  # in the background, before the last sync at the end
    for name in ("traces.jsonl", "llamafactory/traces.json", "dataset/data-00000-of-00001.arrow"):
        assert (tmp_path / "synced" / name).read_bytes() == (tmp_path / "whole" / name).read_bytes(), name


def test_an_aborted_build_waits_for_its_syncs_and_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(outputs, "SYNC_EVERY", 1)
    rng = random.Random(4)
    with pytest.raises(RuntimeError), TraceWriter(tmp_path) as w:
        for i in range(1500):
            w.write(trace(rng, i))
        raise RuntimeError("interrupted")
    assert not list(tmp_path.rglob("*.tmp")) and not (tmp_path / "traces.jsonl").exists()


def test_a_row_is_a_trace_without_validation():
    assert outputs.TraceRow.__struct_fields__ == tuple(Trace.model_fields)  # the same fields, in its order
    t = trace(random.Random(5), 7)
    row = outputs.TraceRow(*(getattr(t, name) for name in Trace.model_fields))
    assert row == outputs.trace_row(t)
    assert encode([row]).jsonl == encode([t]).jsonl == t.model_dump_json().encode() + b"\n"
    assert sharegpt_json(row) == sharegpt_json(t)


def test_traces_read_back_in_batches_from_jsonl_or_dataset_and_bad_lines_are_named(tmp_path):
    rng = random.Random(5)
    traces = [trace(rng, i) for i in range(7)]
    with TraceWriter(tmp_path / "all") as w:
        w.write_encoded(encode(traces))
    with TraceWriter(tmp_path / "one", ("dataset",)) as w:
        w.write_encoded(encode(traces, ("dataset",)))
    expected = [json.loads(t.model_dump_json()) for t in traces]
    assert [len(b) for b in outputs.trace_batches(tmp_path / "all", size=3)] == [3, 3, 1]
    assert [t for b in outputs.trace_batches(tmp_path / "all") for t in b] == expected
    assert [t for b in outputs.trace_batches(tmp_path / "one") for t in b] == expected
    bad = tmp_path / "bad.jsonl"
    for text, message in (('{"id": 1}\n', r"bad.jsonl:2: field 'messages' missing"), ("{oops\n", r"bad.jsonl:2: not valid JSON")):
        bad.write_bytes((tmp_path / "all" / "traces.jsonl").read_bytes().split(b"\n")[0] + b"\n" + text.encode())
        with pytest.raises(TraceInputError, match=message):
            list(outputs.trace_batches(bad))
    with pytest.raises(TraceInputError, match="file not found"):
        list(outputs.trace_batches(tmp_path / "missing"))
