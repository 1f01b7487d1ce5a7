"""The raw reader's column kernels equal the Python rules they stand for, on texts built to be hard for them."""

from __future__ import annotations

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from skillfactory.prompting import parse_verdict
from skillfactory.traces.raw_kernels import verdicts

# pieces of verdict tags in every case and spacing, two of them at once, Unicode spaces and the letters
# Python's case-insensitive re folds onto the tags' (those texts are judged by Python), and plain text
PIECES = ["<verdict>", "</verdict>", "<VERDICT>", "</Verdict>", "<verdict", "verdict>", "correct", "Correct",
          "INCORRECT", "inCorrect", "corect", " ", "\n", "\t", "\x0b", "\x1c", "\x1f", "\xa0", "\u2003", "\u0131",
          "\u0130", "é", "x", "<", ">", "/", "in", ".", "<verdict> Correct </verdict>",
          "<verdict>Incorrect</verdict>"]


def _expected(texts):
    return [-1 if t is None or parse_verdict(t) is None else int(parse_verdict(t)) for t in texts]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.none(), st.lists(st.sampled_from(PIECES), max_size=8).map("".join)), max_size=40))
def test_verdicts_equal_parse_verdict(texts):
    assert verdicts(pa.array(texts, pa.string())).tolist() == _expected(texts)


def test_verdicts_on_the_cases_that_decide():
    texts = ["ok <verdict>Correct</verdict>", "<verdict> incorrect\n</verdict> done", "<verdict>Correct</verdict>"
             " <verdict>Correct</verdict>", "<verdict>Correct</verdict> and <verdict>", "no verdict",
             "<verdict>maybe</verdict>", "<Verdict>\x1cCORRECT\x1f</VERDICT>", "<verdict>\xa0correct</verdict>",
             "<verdict>\u0131ncorrect</verdict>", None, ""]
    assert verdicts(pa.array(texts, pa.string())).tolist() == [1, 0, -1, -1, -1, -1, 1, 1, 0, -1, -1]
    assert verdicts(pa.array(texts, pa.large_string())).tolist() == _expected(texts)
