"""Worker processes of the trace builder (traces/parallel.py) and the hand-over of their parts."""

from __future__ import annotations

import os
import sys
import threading

import pytest

from skillfactory.records import Trace
from skillfactory.traces import parallel
from skillfactory.traces.outputs import Handed, encode
from skillfactory.traces.parallel import default_workers, handoff_folder, ordered_map
from skillfactory.traces.summary import Tally

linux = pytest.mark.skipif(sys.platform != "linux", reason="worker processes are forked on Linux only")


def _square_with(offset_box, x):
    return x * x + offset_box["offset"], os.getpid()


def _fail_on_three(x):
    if x == 3:
        raise ValueError("three")
    return x


@linux
def test_results_come_in_order_from_other_processes():
    lock = threading.Lock()  # cannot be pickled: the state reaches the workers by fork, not by pickle
    state = ({"offset": 1, "lock": lock},)
    out = list(ordered_map(_square_with, range(40), state=state, workers=2, ahead=1))
    assert [v for v, _ in out] == [x * x + 1 for x in range(40)]
    assert os.getpid() not in {pid for _, pid in out}
    assert parallel._TASK is None  # the parent keeps no reference to the state


def test_one_worker_runs_here_lazily():
    calls = []
    results = ordered_map(lambda x: calls.append(x) or x, [1, 2], workers=1)
    assert calls == []  # nothing ran yet: the serial path is a plain generator
    assert list(results) == [1, 2] and calls == [1, 2]


@linux
def test_a_worker_error_is_raised_when_its_result_is_due():
    got = []
    with pytest.raises(ValueError, match="three"):
        for x in ordered_map(_fail_on_three, range(10), workers=2):
            got.append(x)
    assert got == [0, 1, 2]


def test_default_workers_only_for_enough_work(monkeypatch):
    monkeypatch.setattr(parallel, "available_cpus", lambda: 16)
    assert default_workers(5, min_items=10) == 1
    assert default_workers(10, min_items=10) == (4 if sys.platform == "linux" else 1)  # capped at 4
    monkeypatch.setattr(parallel, "available_cpus", lambda: 1)
    assert default_workers(100, min_items=10) == 1


@linux
@pytest.mark.parametrize("shm_room", [0, 1 << 60])  # /dev/shm with room / without (a container's 64 MB)
def test_handoff_folder_is_removed_with_what_is_left_in_it(tmp_path, monkeypatch, shm_room):
    monkeypatch.setattr(parallel, "SHM_ROOM", shm_room)
    with handoff_folder(2, tmp_path / "runs" / "traces") as folder:
        where = "/dev/shm" if shm_room == 0 and os.access("/dev/shm", os.W_OK) else str(tmp_path / "runs")
        assert folder is not None and os.path.dirname(folder) == where
        open(os.path.join(folder, "part-left.bin"), "wb").close()  # as a crashed worker would leave it
    assert not os.path.exists(folder)
    with handoff_folder(1, tmp_path / "out") as none:
        assert none is None


def _trace(i: int) -> Trace:
    return Trace(id=f"q{i}|*C_full|r0|n1", question_id=f"q{i}", format="*C_full",
                 messages=[{"role": "user", "content": f"question {i} ü"},
                           {"role": "assistant", "content": "<think>\n\"x\"\n</think>" * (i + 1)}],
                 n_attempts=1, sample_ids=[f"q{i}|original|0"], reflection_ids=[], final_correct=bool(i % 2))


def test_a_handed_part_loads_as_the_part_it_was(tmp_path):
    part = encode([_trace(i) for i in range(5)])
    handed = part.to_file(tmp_path)
    back = handed.load()
    assert not os.path.exists(handed.path)  # removed once mapped
    assert bytes(back.jsonl) == part.jsonl and bytes(back.sharegpt) == part.sharegpt
    assert back.line_lengths == part.line_lengths and back.n == 5
    assert back.batch.equals(part.batch)
    assert isinstance(handed, Handed)


def test_merged_tallies_equal_one_tally():
    def count(t: Tally, questions: range) -> None:
        for q in questions:
            t.start_question()
            if q % 3:
                t.made("*C_full", q % 4 + 1, bool(q % 2))
            else:
                t.skip("*C_full", "no_correct_attempt")
            t.end_question()

    whole, a, b = Tally(), Tally(), Tally()
    count(whole, range(20))
    count(a, range(11))
    count(b, range(11, 20))
    a.merge(b)
    assert a.as_dict() == whole.as_dict()


@linux
def test_closing_before_any_result_stops_the_workers():
    import multiprocessing

    results = ordered_map(_fail_on_three, range(10), workers=2)
    children = multiprocessing.active_children()
    assert len(children) >= 2
    results.close()  # as `with closing(...)` does when the block fails before the first result
    assert not any(c.is_alive() for c in children)


def _ctrl_c_once_the_pool_exists(monkeypatch, times: int = 1, during=lambda: None) -> list:
    """Make ordered_map's Pool send Ctrl-C ``times`` as soon as its workers are forked (while ordered_map holds
    it back), then call ``during``; returns the list the pools made are put in.

    Raised on this thread: os.kill sends it to the process, and the kernel may hand it to another thread, whose
    handler Python then runs later - after the test (most likely what interrupted a CI run of the suite)."""
    import multiprocessing
    import signal

    context = type(multiprocessing.get_context("fork"))
    fork_pool, made = context.Pool, []

    def pool_then_ctrl_c(self, *args, **kwargs):
        pool = fork_pool(self, *args, **kwargs)
        made.append(pool)
        for _ in range(times):
            signal.raise_signal(signal.SIGINT)
        during()
        return pool

    monkeypatch.setattr(context, "Pool", pool_then_ctrl_c)
    return made


@linux
def test_ctrl_c_while_the_workers_are_forked_is_raised_once_they_exist_and_stops_them(monkeypatch):
    """Raised inside fork's own handlers, a Ctrl-C was lost ("Exception ignored") and the build went on."""
    import multiprocessing
    import signal

    made = _ctrl_c_once_the_pool_exists(monkeypatch)
    # Python's own Ctrl-C handler, whatever this process inherited: started in the background by a shell
    # (`pytest &`), it ignores SIGINT, and an ignored Ctrl-C is rightly ignored after the fork too
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            ordered_map(_fail_on_three, range(10), workers=2)
        assert made and multiprocessing.active_children() == []  # its workers terminated and joined
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # Ctrl-C no longer held back
    finally:
        signal.signal(signal.SIGINT, before)


@linux
def test_ctrl_c_held_while_forking_goes_to_the_handler_there_was_before(monkeypatch):
    import signal

    seen = []

    def not_yet():
        assert seen == []  # held, not handled inside the fork

    _ctrl_c_once_the_pool_exists(monkeypatch, times=2, during=not_yet)
    before = signal.signal(signal.SIGINT, lambda signum, frame: seen.append(signum))
    try:
        results = ordered_map(_fail_on_three, range(3), workers=2)
        assert seen == [signal.SIGINT]  # once, after the fork, to the handler the caller had
        assert list(results) == [0, 1, 2]  # a handler that does not raise: the work goes on
    finally:
        signal.signal(signal.SIGINT, before)
