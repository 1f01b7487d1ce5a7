"""Arrays built from buffers equal what ``pa.array`` makes, and a parquet build never imports pandas."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from trace_helpers import raw_rows

from skillfactory.traces import arrow_arrays as A


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(max_size=12), max_size=30))
def test_strings_equal_pa_array(values):
    made = A.strings(values)
    assert made.equals(pa.array(values, pa.string()))
    assert made.type == pa.string() and made.null_count == 0


def test_strings_fall_back_to_pa_array_for_what_they_cannot_take():
    assert A.strings(["a", None, "é"]).to_pylist() == ["a", None, "é"]  # a None: pa.array's own result
    with pytest.raises(Exception) as expected:
        pa.array(["\ud800"], pa.string())
    with pytest.raises(expected.type):  # a lone surrogate: pa.array's error, as before
        A.strings(["\ud800"])


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(-2**63, 2**63 - 1), st.booleans()), max_size=40))
def test_ints_and_bools_equal_pa_array(pairs):
    numbers = np.array([p[0] for p in pairs], dtype=np.int64)
    mask = np.array([p[1] for p in pairs], dtype=bool)
    assert A.ints(numbers).equals(pa.array(numbers))
    assert A.ints(numbers, mask=mask).equals(pa.array(numbers, mask=mask))
    assert A.bools(mask).equals(pa.array(mask))
    assert A.offsets([len(str(n)) for n in numbers]).equals(
        pa.array(np.concatenate([[0], np.cumsum([len(str(n)) for n in numbers])]).astype(np.int32)))


@pytest.mark.parametrize("start", [0, 3, 9])
def test_numpy_views_of_sliced_arrays_with_nulls(start):
    texts = pa.array(["ab", None, "b", "a", None, "xa", "", "a", None, "a", "q", "aa"] * 2).slice(start)
    found = pc.match_substring_regex(texts, "a")
    assert A.filled(found, False).tolist() == np.asarray(found.fill_null(False)).tolist()
    assert A.filled(found, True).tolist() == np.asarray(found.fill_null(True)).tolist()
    assert A.values(texts.is_null()).tolist() == np.asarray(texts.is_null()).tolist()
    indices = pc.dictionary_encode(texts).indices
    assert A.int_values(indices, -1).tolist() == np.asarray(indices.fill_null(-1)).tolist()
    lists = pa.array([[1], None, [2, 3], []] * 4).slice(start % 4 + 1)
    assert A.values(lists.offsets).tolist() == np.asarray(lists.offsets).tolist()
    with pytest.raises(ValueError, match="nulls"):
        A.values(indices)


def test_a_parquet_build_never_imports_pandas(tmp_path):
    """``pa.array`` and ``np.asarray`` of an Arrow array import pandas (0.15 s at the start of a build): the raw
    reader, the chunks (as a worker builds them) and the dataset writer use the buffers instead."""
    raw = tmp_path / "raw.parquet"
    pq.write_table(pa.Table.from_pylist(raw_rows(3, n_questions=40)), raw)
    code = (
        "import sys\n"
        "from skillfactory.traces.build import TraceConfig, build_traces\n"
        f"cfg = TraceConfig(raw={str(raw)!r}, formats=['*C_full'], seed=0, out={str(tmp_path / 'out')!r})\n"
        "summary = build_traces(cfg, progress=False, workers=1)  # the chunks in this process\n"
        "assert summary['traces'] > 0, summary\n"
        "print('pandas' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
