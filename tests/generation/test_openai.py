"""The openai backend against a real OpenAI-format HTTP server on 127.0.0.1, started by the test."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from skillfactory.generation import BackendError, GenerationRequest, SamplingParams, get_backend
from skillfactory.generation.common import completion_seed


class FakeServer:
    """Canned OpenAI replies: the text names the prompt and the seed, so every reply can be checked.

    ``fail`` is a list of HTTP statuses to answer the next requests with (then it answers normally);
    ``delay`` holds each request so concurrency can be observed.
    """

    def __init__(self, delay: float = 0.0, fail: list[int] | None = None, key: str | None = None):
        self.delay, self.fail, self.key = delay, list(fail or []), key
        self.bodies: list[tuple[str, dict]] = []
        self.starts: list[float] = []
        self.in_flight = self.max_in_flight = 0
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server.lock:
                    server.bodies.append((self.path, body))
                    server.starts.append(time.monotonic())
                    status = server.fail.pop(0) if server.fail else 200
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                try:
                    time.sleep(server.delay)
                    if server.key and self.headers.get("Authorization") != f"Bearer {server.key}":
                        status = 401
                    if status != 200:
                        self.send_response(status)
                        if status == 429:
                            self.send_header("Retry-After", "0")
                        self.end_headers()
                        self.wfile.write(b'{"error": {"message": "try again"}}')
                        return
                    self._reply(body)
                finally:
                    with server.lock:
                        server.in_flight -= 1

            def _reply(self, body):
                if self.path.endswith("/chat/completions"):
                    text = f"[{body['messages'][-1]['content']}|{body['seed']}]"
                    choice = {"message": {"role": "assistant", "content": text}}
                else:
                    text = f"[{len(body['prompt'])} ids|{body['seed']}]"
                    choice = {"text": text}
                stop = body.get("stop") or []
                if stop and stop[0] in text:  # like real servers: the matched stop string is not in the text
                    text = text[:text.index(stop[0])]
                    choice["message" if "message" in choice else "text"] = (
                        {"role": "assistant", "content": text} if "message" in choice else text)
                choice.update(finish_reason="stop" if stop else "length", stop_reason=stop[0] if stop else None)
                data = json.dumps({"choices": [choice], "usage": {"completion_tokens": 7}}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def req(text, prefix=""):
    return GenerationRequest([{"role": "user", "content": text}], prefix)


def test_completions_in_order_with_seeds_and_concurrency():
    reqs = [req(f"q{i}") for i in range(4)]
    params = SamplingParams(n=2, max_new_tokens=5, seed=11)
    with FakeServer(delay=0.1) as srv:
        b = get_backend("openai", "served-model", base_url=srv.url, concurrency=4)
        seen = []
        out = b.generate(reqs, params, progress=lambda c, t: seen.append((c, t)))
    assert [[c.text for c in r] for r in out] == [
        [f"[q{i}|{completion_seed(11, reqs[i], j)}]" for j in range(2)] for i in range(4)]
    assert all(c.n_tokens == 7 and c.finish_reason == "length" for r in out for c in r)
    assert 2 <= srv.max_in_flight <= 4  # concurrent, but never more than asked
    assert len(srv.bodies) == 8 and sum(c for c, _ in seen) == 8 and sum(t for _, t in seen) == 56
    path, body = srv.bodies[0]
    assert path == "/v1/chat/completions" and body["model"] == "served-model" and body["max_tokens"] == 5
    assert body["n"] == 1 and "top_k" not in body


def test_retries_server_errors_and_rate_limits():
    with FakeServer(fail=[500, 429, 503]) as srv:
        b = get_backend("openai", "m", base_url=srv.url, concurrency=1, backoff=0.01)
        out = b.generate([req("a")], SamplingParams(n=1, max_new_tokens=4))
    assert out[0][0].text.startswith("[a|") and len(srv.bodies) == 4


def test_client_errors_fail_at_once_and_retries_end():
    with FakeServer(fail=[400]) as srv:
        b = get_backend("openai", "m", base_url=srv.url, backoff=0.01)
        with pytest.raises(BackendError, match="answered 400: .*try again"):
            b.generate([req("a")], SamplingParams(n=1))
    assert len(srv.bodies) == 1
    with FakeServer(fail=[500] * 10) as srv:
        b = get_backend("openai", "m", base_url=srv.url, max_retries=2, backoff=0.01)
        with pytest.raises(BackendError, match="failed after 3 attempts"):
            b.generate([req("a")], SamplingParams(n=1))
    with FakeServer() as srv:
        url = srv.url
    b = get_backend("openai", "m", base_url=url, max_retries=1, backoff=0.01)  # nothing listens any more
    with pytest.raises(BackendError, match="failed after 2 attempts"):
        b.generate([req("a")], SamplingParams(n=1))


def test_rate_limit_spaces_requests():
    with FakeServer() as srv:
        b = get_backend("openai", "m", base_url=srv.url, concurrency=8, requests_per_second=20)
        t0 = time.monotonic()
        b.generate([req(str(i)) for i in range(6)], SamplingParams(n=1))
        elapsed = time.monotonic() - t0
    gaps = [b - a for a, b in zip(sorted(srv.starts), sorted(srv.starts)[1:])]
    assert elapsed >= 5 / 20 * 0.95 and min(gaps) >= 0.03


def test_api_key_from_named_env_var(monkeypatch):
    monkeypatch.setenv("MY_TEST_KEY", "sekrit")
    with FakeServer(key="sekrit") as srv:
        ok = get_backend("openai", "m", base_url=srv.url, api_key_env="MY_TEST_KEY")
        assert ok.generate([req("a")], SamplingParams(n=1))[0][0].text.startswith("[a|")
        bad = get_backend("openai", "m", base_url=srv.url, api_key_env="NO_SUCH_VAR_FOR_TEST")
        with pytest.raises(BackendError, match="401"):
            bad.generate([req("a")], SamplingParams(n=1))


def test_stop_string_kept_and_continuation_paths(tiny_model_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    with FakeServer() as srv:
        chat = get_backend("openai", "m", base_url=srv.url)
        out = chat.generate([req("a"), req("b", prefix="<think>")], SamplingParams(n=1, stop=("|",), top_k=5))
        local = get_backend("openai", "m", base_url=srv.url, tokenizer=str(tiny_model_dir), max_context=64)
        cont = local.generate([req("b", prefix="<think>"), req("x " * 100)], SamplingParams(n=1, max_new_tokens=8))
    # the server dropped the stop string and reported it as stop_reason: our contract keeps it in the text
    assert out[0][0].text == "[a|" and out[0][0].finish_reason == "stop"
    (p0, b0), (p1, b1) = sorted(srv.bodies[:2], key=lambda pb: pb[1]["messages"][0]["content"])
    assert b0["top_k"] == 5 and "continue_final_message" not in b0
    assert b1["messages"][-1] == {"role": "assistant", "content": "<think>"} and b1["continue_final_message"]
    path, body = srv.bodies[2]
    expected = tok(tok.apply_chat_template(req("b").messages, add_generation_prompt=True, tokenize=False) + "<think>",
                   add_special_tokens=False)["input_ids"]
    assert path == "/v1/completions" and body["prompt"] == expected
    assert cont[1][0].finish_reason == "skipped" and len(srv.bodies) == 3  # too long: never sent
