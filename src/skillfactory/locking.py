"""One writer per output folder: a second run on the same ``--out`` is refused while the first is alive.

    >>> with folder_lock("runs/s", "sample"):   # runs/s/.lock, released (and removed) on exit
    ...     ...

Why: every stage resumes by appending to what its folder holds, so two live runs on one folder (two terminals,
a scheduler retrying a job whose first try still runs) would both append - 480 lines for 240 samples.

How: ``fcntl.flock(LOCK_EX | LOCK_NB)`` on ``OUT/.lock``. The kernel drops the lock when its process dies,
however it dies, so a lock left by a killed run (SIGKILL, OOM) is simply taken again - with a one-line note
on stderr, told apart from a clean release by the holder's record still being in the file (a clean release
removes the file). The holder writes its pid, host, command and start time into the file so that the
refused run can say who holds the folder. The lock is re-entrant per process: taking a folder this process
already holds just counts up (flock locks belong to an open file, so a second open would lock us out).

Folders are locked one by one, not as a tree: ``run`` holds its root, and each stage (in-process or in a
child) holds its own folder while it runs, so a lone stage pointed inside a live recipe's root is refused
only while the pipeline is in that very stage. Stage functions take their lock with :func:`locks_folder`, a
one-line decorator, so the lock covers the whole call, early returns and errors included.

Training under ``accelerate launch`` runs N processes on one folder: there only rank 0 takes the lock
(``rank_zero_only``); if it is refused, the launcher stops the other ranks. Without ``fcntl`` (Windows)
stages run unlocked, with a warning.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import inspect
import json
import logging
import os
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from skillfactory.errors import SkillFactoryError

LOCK_FILE = ".lock"

log = logging.getLogger(__name__)
F = TypeVar("F", bound=Callable[..., Any])


class FolderLockedError(SkillFactoryError):
    """Another live process is writing the output folder."""


class _Held:
    """A lock this process holds: its open file and how many times it was entered."""

    def __init__(self, fd: int, created: bool) -> None:
        self.fd, self.created, self.count, self.pid = fd, created, 1, os.getpid()


_held: dict[str, _Held] = {}  # real path of the folder -> its lock
_guard = threading.Lock()


@contextlib.contextmanager
def folder_lock(out_dir: str | Path, what: str, *, rank_zero_only: bool = False) -> Iterator[Path]:
    """Hold ``out_dir``'s lock for the block (creating the folder); raise :class:`FolderLockedError` if taken.

    ``what`` names the holder in the record (``sample``, ``run``, ...). With ``rank_zero_only``, a process
    whose ``RANK`` is set and not 0 takes no lock (its rank 0 holds it for all of them).
    """
    out = Path(out_dir)
    if rank_zero_only and os.environ.get("RANK", "0") not in ("", "0"):
        yield out
        return
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    key = os.path.realpath(out)
    with _guard:
        held = _held.get(key)
        if held is not None:
            held.count += 1
        else:
            fd = _acquire(out, what)
            if fd is not None:
                held = _held[key] = _Held(fd, created)
    try:
        yield out
    finally:
        if held is not None:
            with _guard:
                held.count -= 1
                if held.count == 0:
                    del _held[key]
                    _release(out, held)


def locks_folder(what: str, out: str = "cfg.out", *, rank_zero_only: bool = False) -> Callable[[F], F]:
    """Decorate a stage function so its whole call holds the lock of the folder named by ``out``.

    ``out`` is a parameter name, optionally with attributes: ``"cfg.out"`` (the default) or ``"out"``.

        >>> @locks_folder("sample")
        ... def sample(cfg, backend=None): ...
    """
    param, *attrs = out.split(".")

    def decorate(fn: F) -> F:
        sig = inspect.signature(fn)

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            bound = sig.bind(*args, **kwargs)
            bound.apply_defaults()
            folder = bound.arguments[param]
            for a in attrs:
                folder = getattr(folder, a)
            with folder_lock(folder, what, rank_zero_only=rank_zero_only):
                return fn(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate


def _acquire(out: Path, what: str) -> int | None:
    """Open and lock ``OUT/.lock``; the fd, or None where this system or filesystem cannot lock."""
    try:
        import fcntl
    except ImportError:
        log.warning("no fcntl on this system: %s is not locked against a second run writing it", out)
        return None
    path = out / LOCK_FILE
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:  # a read-only folder: nothing will be written there by us either
            log.warning("cannot create %s (%s): running without a folder lock", path, e.strerror)
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            os.close(fd)
            if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise FolderLockedError(_refusal(out, path)) from None
            log.warning("cannot lock %s (%s): running without a folder lock", path, e.strerror)
            return None
        # the holder before us may have removed the file between our open and our flock: then we locked a
        # file nobody else will see; start again on the one at the path now
        try:
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    previous = _read_record(fd)
    os.ftruncate(fd, 0)
    os.pwrite(fd, (json.dumps(_record(what)) + "\n").encode(), 0)
    if previous and _alive(previous) is not True:  # on another host: its lock was released, so it is gone
        print(f"note: {out}: taking over the lock of a run that is no longer alive ({_describe(previous)})",
              file=sys.stderr, flush=True)
    return fd


def _release(out: Path, held: _Held) -> None:
    if held.pid != os.getpid():  # a forked child leaving the block: the lock is still its parent's
        os.close(held.fd)
        return
    path = out / LOCK_FILE
    with contextlib.suppress(OSError):  # remove first, unlock second: see the inode check in _acquire
        if os.stat(path).st_ino == os.fstat(held.fd).st_ino:
            path.unlink()
    os.close(held.fd)
    if held.created:  # a run that failed before writing anything leaves no empty folder behind
        with contextlib.suppress(OSError):
            out.rmdir()


def _record(what: str) -> dict[str, Any]:
    argv = sys.orig_argv  # the command as typed: `python -m skillfactory sample ...`, not __main__.py
    cmd = " ".join([Path(argv[0]).name, *argv[1:]]) if argv else "?"
    return {"pid": os.getpid(), "host": socket.gethostname(), "what": what, "command": cmd,
            "started": time.strftime("%Y-%m-%d %H:%M:%S %z")}


def _read_record(fd: int) -> dict[str, Any] | None:
    try:
        data = json.loads(os.pread(fd, 1 << 16, 0).decode() or "null")
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _describe(rec: dict[str, Any]) -> str:
    text = (f"{rec.get('what', '?')}, pid {rec.get('pid', '?')} on {rec.get('host', '?')}, started "
            f"{rec.get('started', '?')}: `{rec.get('command', '?')}`")
    return " ".join(text.split())  # one line, whatever the command held


def _refusal(out: Path, path: Path) -> str:
    rec = None
    for _ in range(20):  # the holder writes its record just after it locks (over a dead one's): give it a moment
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            break
        try:
            rec = _read_record(fd)
        finally:
            os.close(fd)
        if rec and _alive(rec) is not False:  # not the record of a dead run its new holder overwrites
            break
        rec = None
        time.sleep(0.05)
    who = _describe(rec) if rec else "a process that has not written its details yet"
    return f"{out} is in use by another run ({who}); wait for it to end or stop it, or use another output folder"


def _alive(rec: dict[str, Any]) -> bool | None:
    """Whether the record's process still runs; None where we cannot look (another host)."""
    pid = rec.get("pid")
    if rec.get("host") != socket.gethostname() or not isinstance(pid, int):
        return None
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    try:  # a killed process nobody has reaped yet is a zombie: dead for our purpose
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True
