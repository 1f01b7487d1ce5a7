"""Run reasoning-gym scorers in a child process with a wall-clock timeout and a memory cap.

Why a process: several reasoning-gym scorers evaluate the answer they are given (``eval`` in binary_matrix,
spiral_matrix, string_insertion, n_queens; sympy ``parse_expr`` in countdown, puzzle24, polynomial and
integration tasks). The adapter's screen (``reasoning_gym.screen_answer``) keeps code out, but arithmetic that
parses can still be too big (``(0,)*10**12``-style repetition, huge powers): a C-level big-int or allocation
cannot be interrupted by a signal inside the same process. In a child, a hung score is killed after
``timeout_s`` and a memory bomb hits ``RLIMIT_AS`` and fails as a ``MemoryError`` (scored 0).

One long-lived worker per task object serves many scores over pipes (JSON lines; the child is started as
``python -m skillfactory.tasks.sandbox``, so callers need no ``__main__`` guard); it is restarted after a kill.
A forked copy of the task (the trace builder's worker processes) starts a scoring child of its own: it tells
the parent's child from its own by pid (not by the ECHILD that polling another process's child happens to
give), so two processes' requests and scores never share one pair of pipes.
"""

from __future__ import annotations

import atexit
import json
import os
import select
import subprocess
import sys
from typing import Any

TIMEOUT = "timeout"
CRASH = "crash"


def _serve(name: str, config: dict[str, Any], memory_mb: int) -> None:  # pragma: no cover (child)
    """Child loop: one JSON request per stdin line -> one JSON score (or error string) per line."""
    proto = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)  # anything a scorer prints goes to stderr, never into the protocol
    sys.stdout = sys.stderr
    try:
        import resource

        limit = memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    except (ImportError, ValueError, OSError):
        pass
    import reasoning_gym

    dataset = reasoning_gym.create_dataset(name, seed=0, size=1, **config)
    proto.write('"ready"\n')
    proto.flush()
    for line in sys.stdin:
        try:
            answer, entry = json.loads(line)
            score: float | str = float(dataset.score_answer(answer=answer, entry=entry))
        except BaseException as e:  # noqa: BLE001 - any scorer failure is reported as text (scored wrong)
            score = f"{type(e).__name__}: {e}"[:200]
        proto.write(json.dumps(score) + "\n")
        proto.flush()


class ScoringWorker:
    """Scores answers for one reasoning-gym dataset in a child process. ``score`` returns a float, or
    ``TIMEOUT`` / ``CRASH`` / an error string."""

    def __init__(self, name: str, config: dict[str, Any], timeout_s: float = 5.0, memory_mb: int = 2048,
                 start_timeout_s: float = 120.0):
        self.name, self.config = name, dict(config)
        self.timeout_s, self.memory_mb, self.start_timeout_s = timeout_s, memory_mb, start_timeout_s
        self._proc: subprocess.Popen | None = None
        self._owner = os.getpid()  # the process whose child self._proc is
        atexit.register(self.close)

    def _forked(self) -> bool:
        """True in a forked copy: the scoring child is the parent's; forget it (the parent still uses it)."""
        if self._owner == os.getpid():
            return False
        self._proc, self._owner = None, os.getpid()
        return True

    def _start(self) -> None:
        cmd = [sys.executable, "-m", "skillfactory.tasks.sandbox", self.name, json.dumps(self.config),
               str(self.memory_mb)]
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                text=True, encoding="utf-8", bufsize=1)
        self._proc = proc
        if self._read(self.start_timeout_s) != "ready":
            self._kill()
            raise RuntimeError(f"reasoning-gym scoring worker for {self.name!r} did not start")

    def _read(self, timeout: float) -> Any:
        proc = self._proc
        if proc is None or proc.stdout is None:
            return CRASH
        ready, _, _ = select.select([proc.stdout], [], [], timeout)
        if not ready:
            return TIMEOUT
        line = proc.stdout.readline()
        return json.loads(line) if line else CRASH

    def score(self, answer: str, entry: dict[str, Any]) -> float | str:
        self._forked()
        if self._proc is None or self._proc.poll() is not None:
            self._start()
        proc = self._proc
        if proc is None or proc.stdin is None:  # pragma: no cover - _start sets it
            return CRASH
        try:
            proc.stdin.write(json.dumps([answer, entry]) + "\n")
            proc.stdin.flush()
            out = self._read(self.timeout_s)
        except (BrokenPipeError, OSError, ValueError):
            out = CRASH
        if out in (TIMEOUT, CRASH):
            self._kill()
        return out

    def _kill(self) -> None:
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait(timeout=10)
            for f in (self._proc.stdin, self._proc.stdout):
                if f is not None:
                    f.close()
        self._proc = None

    def close(self) -> None:
        if self._forked():  # never close the parent's scoring child from a forked copy
            return
        if self._proc is not None and self._proc.poll() is None and self._proc.stdin is not None:
            try:
                self._proc.stdin.close()
                self._proc.wait(timeout=2)
            except (BrokenPipeError, OSError, subprocess.TimeoutExpired):
                pass
        if self._proc is not None and self._proc.poll() is None:
            self._kill()
        self._proc = None


if __name__ == "__main__":  # pragma: no cover - the child process
    _serve(sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3]))


__all__ = ["CRASH", "TIMEOUT", "ScoringWorker"]
