"""Record construction shortcuts (records.py)."""

from __future__ import annotations

import pytest

from skillfactory.records import Trace

FIELDS = dict(final_correct=True, id="q|*C_full|r0|n1", question_id="q", format="*C_full",  # out of order
              messages=[{"role": "user", "content": "x"}, {"role": "assistant", "content": "y"}],
              n_attempts=1, sample_ids=["q|original|0"], reflection_ids=["q|original|0|r1"])


def test_trusted_equals_model_construct():
    fast, slow = Trace.trusted(**FIELDS), Trace.model_construct(**FIELDS)
    assert fast == slow and repr(fast) == repr(slow)
    assert list(fast.__dict__) == list(slow.__dict__) == list(Trace.model_fields)  # the JSON's key order
    assert fast.model_dump_json() == slow.model_dump_json()
    assert fast.model_fields_set == slow.model_fields_set
    with pytest.raises(Exception):  # still frozen
        fast.id = "other"


def test_trusted_refuses_missing_or_unknown_fields():
    with pytest.raises(TypeError, match="missing \\['n_attempts'\\]"):
        Trace.trusted(**{k: v for k, v in FIELDS.items() if k != "n_attempts"})
    with pytest.raises(TypeError, match="unknown \\['colour'\\]"):
        Trace.trusted(**{k: v for k, v in FIELDS.items() if k != "id"}, colour="red")
