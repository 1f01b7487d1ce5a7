"""The console helpers: a stage's progress bar (plain lines with the time left where a bar cannot redraw) and the
routing of library messages and Python warnings to the stage folder's log.txt."""

from __future__ import annotations

import io
import logging
import warnings

from rich.console import Console

from skillfactory.console import LOG_FILE, StepProgress, library_log


def _bar_run(console: Console, **kw) -> None:
    with StepProgress("pretraining", total=4, unit="updates", metric="loss", console=console, **kw) as bar:
        for i in range(4):
            bar.update(i + 1, value=2.0 - i / 4)
        bar.stop("pretrained 4 updates, final loss 1.250")


def test_off_a_terminal_the_bar_prints_lines_with_the_time_left_then_the_summary():
    buf = io.StringIO()
    _bar_run(Console(file=buf, width=200), heartbeat=0)  # a line at every update, but not at the last one
    lines = buf.getvalue().splitlines()
    assert lines[-1] == "pretrained 4 updates, final loss 1.250"
    assert [line.split(",")[0] for line in lines[:-1]] == ["pretraining 1/4 updates", "pretraining 2/4 updates",
                                                           "pretraining 3/4 updates"]
    assert lines[0].startswith("pretraining 1/4 updates, loss 2.000, 0:00:00 elapsed, ") and lines[0].endswith(" left")

    buf = io.StringIO()
    _bar_run(Console(file=buf, width=200))  # the default heartbeat: a short run prints its summary only
    assert buf.getvalue() == "pretrained 4 updates, final loss 1.250\n"


def test_on_a_terminal_the_bar_is_cleared_and_quiet_prints_nothing():
    buf = io.StringIO()
    _bar_run(Console(file=buf, width=200, force_terminal=True))
    text = buf.getvalue()
    assert "4/4" in text and "loss 1.250" in text and "left" in text  # the live bar
    assert text.rstrip().endswith("pretrained 4 updates, final loss 1.250") and "pretraining 1/4 updates," not in text

    buf = io.StringIO()
    _bar_run(Console(file=buf, width=200), heartbeat=0, quiet=True)
    assert buf.getvalue() == ""


def test_a_label_or_note_in_brackets_is_shown_as_written_not_read_as_markup():
    """Suite entries are labelled like ``addsum[digits=1]``: rich would take the brackets for a style tag."""
    buf = io.StringIO()
    with StepProgress("eval base[seed=0]", total=2, unit="samples", console=Console(file=buf, width=200,
                                                                                       force_terminal=True)) as bar:
        bar.update(1, note="addsum[digits=1] plain")
        bar.update(2, note="addsum[digits=2] plain")
    text = buf.getvalue()
    assert "eval base[seed=0]" in text and "addsum[digits=2] plain" in text  # drawn last, at the stop


def test_library_messages_and_warnings_go_to_the_stage_log_not_the_console(tmp_path, capfd, caplog):
    import transformers.utils.logging as tf_logging

    tf_logging.get_verbosity()  # transformers' own console handler exists, as in any run
    root = logging.getLogger("transformers")
    before = (root.handlers[:], root.propagate, root.level, warnings.showwarning, tf_logging.is_progress_bar_enabled())
    with library_log(tmp_path / "stage") as path:
        logging.getLogger("transformers.trainer").info("***** Running training *****")
        logging.getLogger("trl.trainer.grpo_trainer").warning("trl warns")
        logging.getLogger("datasets").warning("datasets warns")
        warnings.warn("`old` is deprecated", FutureWarning)
        logging.getLogger("skillfactory.test").warning("our own warning")
        assert not tf_logging.is_progress_bar_enabled()
    out, err = capfd.readouterr()
    text = path.read_text()
    assert path == tmp_path / "stage" / LOG_FILE
    for needle in ("Running training", "trl warns", "datasets warns", "FutureWarning: `old` is deprecated",
                   "our own warning"):
        assert needle in text, needle
    for needle in ("Running training", "trl warns", "datasets warns", "deprecated"):
        assert needle not in out + err + caplog.text, needle  # nor do they reach the root logger
    assert "our own warning" in caplog.text  # ours still do (the CLI's root handler prints them)
    assert (root.handlers, root.propagate, root.level, warnings.showwarning,
            tf_logging.is_progress_bar_enabled()) == before


def test_an_inner_stage_log_takes_over_and_gives_the_outer_one_back(tmp_path):
    log = logging.getLogger("transformers.test")
    with library_log(tmp_path / "run") as outer:
        log.warning("before")
        with library_log(tmp_path / "stage") as inner:
            log.warning("during")
        log.warning("after")
    assert "before" in outer.read_text() and "after" in outer.read_text() and "during" not in outer.read_text()
    assert "during" in inner.read_text() and "before" not in inner.read_text()
