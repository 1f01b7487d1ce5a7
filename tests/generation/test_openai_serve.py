"""The openai backend against two REAL OpenAI-compatible servers (``transformers serve`` of the micro toy model on
CPU), one SIGKILLed mid-run: the run finishes, nothing lost or duplicated, the same samples as one server.

Greedy (temperature 0) for the kill: ``transformers serve`` takes a request's ``seed`` as the process-wide torch
seed, so a sampled completion depends on what else that server runs at the same time (after the kill, two
requests share the one server left). A sampled run without a kill, one request per server at a time, still
shows the seeds travelling with the requests: the same text from either server.
Skipped when ``transformers serve`` is not installed (``pip install 'transformers[serving]'``)."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from skillfactory.records import Sample, read_jsonl
from skillfactory.sampling import SampleConfig, sample

pytestmark = pytest.mark.slow
SERVE = Path(sys.executable).parent / "transformers"


def _have_serve() -> bool:
    return SERVE.exists() and all(importlib.util.find_spec(m) is not None for m in ("fastapi", "uvicorn"))


class Server:
    """``transformers serve MODEL`` on a free port, in its own session (so the test can SIGKILL all of it)."""

    def __init__(self, model: Path, log: Path):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url, self.log = f"http://127.0.0.1:{self.port}/v1", log
        cmd = [str(SERVE), "serve", str(model), "--host", "127.0.0.1", "--port", str(self.port), "--device", "cpu",
               "--log-level", "info"]
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
        self.proc = subprocess.Popen(cmd, stdout=log.open("wb"), stderr=subprocess.STDOUT, env=env,
                                     start_new_session=True)

    def wait_up(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"transformers serve exited: {self.log.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=2):
                    return
            except OSError:
                time.sleep(0.2)
        pytest.fail("transformers serve did not come up")

    def served(self) -> int:
        return self.log.read_text(errors="replace").count("POST /v1/chat/completions")

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


@pytest.fixture(scope="module")
def servers(tmp_path_factory, micro_model):
    if not _have_serve():
        pytest.skip("transformers serve is not installed (pip install 'transformers[serving]')")
    model = Path(micro_model)
    logs = tmp_path_factory.mktemp("serve")
    pair = [Server(model, logs / f"{name}.log") for name in ("a", "b")]
    try:
        for s in pair:
            s.wait_up()
        yield model, pair
    finally:
        for s in pair:
            s.kill()


def cfg(model: Path, out: Path, urls: list[str], **kw) -> SampleConfig:
    options = {"base_urls": urls, "concurrency": 1, "timeout": 60, "backoff": 0.5, **kw.pop("options", {})}
    return SampleConfig(model=str(model), backend="openai", backend_options=options, task="countdown",
                        params={"num_args": 3}, n=4, per_variant=2, seed=0, max_new_tokens=32, chunk_size=4,
                        out=str(out), **{"temperature": 0.0, **kw})


def test_sampled_completions_do_not_depend_on_the_server(servers, tmp_path):
    model, (a, b) = servers
    sampled = {"temperature": 1.0, "options": {"extra_body": {"generation_config": json.dumps({"do_sample": True})}}}
    sample(cfg(model, tmp_path / "one", [a.url], **sampled), quiet=True)
    sample(cfg(model, tmp_path / "two", [a.url, b.url], **sampled), quiet=True)
    one = (tmp_path / "one/samples.jsonl").read_bytes()
    assert one == (tmp_path / "two/samples.jsonl").read_bytes()
    assert len({s.text for s in read_jsonl(tmp_path / "one/samples.jsonl", Sample)}) > 8  # really sampled


def test_a_server_killed_mid_run_loses_nothing(servers, tmp_path):
    model, (a, b) = servers
    sample(cfg(model, tmp_path / "one", [a.url]), quiet=True)
    before = b.served()
    killed_after: list[int] = []
    killed_at: list[float] = []

    def killer():  # SIGKILL server b once it has answered a few of this run's requests
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and b.served() < before + 3:
            time.sleep(0.01)
        killed_after.append(b.served() - before)
        b.kill()
        killed_at.append(time.monotonic())

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    sample(cfg(model, tmp_path / "fleet", [a.url, b.url]), quiet=True)
    ended = time.monotonic()
    thread.join(5)
    assert killed_after and killed_after[0] >= 3 and b.proc.poll() is not None and killed_at[0] < ended
    fleet = read_jsonl(tmp_path / "fleet/samples.jsonl", Sample)
    keys = [(s.question.id, s.variant, s.index) for s in fleet]
    assert len(keys) == len(set(keys)) == 4 * 4 * 2
    assert (tmp_path / "fleet/samples.jsonl").read_bytes() == (tmp_path / "one/samples.jsonl").read_bytes()
