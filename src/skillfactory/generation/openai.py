"""The ``openai`` backend: any OpenAI-compatible server (``vllm serve``, SGLang, TGI, the OpenAI API).

Standard library only (urllib + a thread pool), so it adds no dependency. What it does and why:
- **One HTTP request per completion** (``n=1``) with the seed ``common.completion_seed(seed, request, j)``:
  completion *j* of a request is then a function of its own work unit on servers that honour ``seed``
  (vLLM, SGLang), like the ``hf`` backend, and resumed stages stay reproducible. Servers with prefix caching
  make the repeated prompts cheap.
- **Continuation** (a request with ``prefix``, used by budget forcing): with a local ``tokenizer`` (a path to
  the served model's tokenizer) the prompt is rendered here (chat template + prefix) and sent to
  ``/completions`` as token ids - exact, and it works on any server with a completions endpoint. Without one,
  it is sent to ``/chat/completions`` with the prefix as a final assistant message and vLLM/SGLang's
  ``continue_final_message: true, add_generation_prompt: false`` (not part of the OpenAI API itself).
- **Robustness**: retries with exponential backoff (honouring ``Retry-After``) on 429, 5xx and connection
  errors; other 4xx fail at once with the server's message; a rate limit in requests per second shared by all
  threads; ``concurrency`` requests in flight per server.
- **A fleet of servers** (``base_urls: [...]``, or ``base_url`` as a list): each request goes to the server with
  the fewest requests in flight. A server that refuses a connection or times out is marked down and the request
  moves to another at once (no retry is spent while one is up); a down server is tried again after ``backoff``
  seconds, doubling per failure up to 30 s, and is back as soon as it answers. The seed travels with the
  request, so which server answers does not change what a seed-honouring server generates; only when every
  server is down does a request wait, and then it counts against ``max_retries``.
- Stop strings are kept in the text (OpenAI servers drop the matched stop string; vLLM reports it as
  ``stop_reason`` and it is put back); ``top_k`` is sent only when set (a vLLM/SGLang extension).
- ``count_tokens`` uses the local tokenizer when given, else a rough estimate (4 characters per token).
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Any

from skillfactory.generation.base import Completion, GenerationRequest, ProgressFn, SamplingParams
from skillfactory.generation.common import completion_seed, cut_at_stop, render_prompt

RETRY_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})
MAX_DOWN_SECONDS = 30.0  # longest wait before a down server is tried again

log = logging.getLogger(__name__)


class RateLimiter:
    """At most ``rate`` request starts per second across threads (None or 0 = unlimited)."""

    def __init__(self, rate: float | None):
        self.interval = 1.0 / rate if rate else 0.0
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self) -> None:
        if not self.interval:
            return
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + self.interval
        if start > now:
            time.sleep(start - now)


class ServerPool:
    """The servers of a fleet: pick the least-loaded one that is up; mark one down (for ``backoff`` seconds,
    doubling per consecutive failure) when it stops answering; wait for the first re-probe when all are down."""

    def __init__(self, urls: Sequence[str], backoff: float):
        self.urls = [u.rstrip("/") for u in urls]
        self.backoff = backoff
        self.in_flight = [0] * len(self.urls)
        self.failures = [0] * len(self.urls)
        self.down_until = [0.0] * len(self.urls)
        self._turn = 0  # round-robin among equally loaded servers
        self._lock = threading.Lock()

    def acquire(self) -> int:
        """A server to send one request to (blocks while every server is down)."""
        while True:
            with self._lock:
                now = time.monotonic()
                up = [i for i in range(len(self.urls)) if self.down_until[i] <= now]
                if up:
                    self._turn += 1
                    i = min(up, key=lambda k: (self.in_flight[k], (k - self._turn) % len(self.urls)))
                    self.in_flight[i] += 1
                    return i
                wait = min(self.down_until) - now
            time.sleep(max(wait, 0.001))

    def release(self, i: int) -> None:
        with self._lock:
            self.in_flight[i] -= 1

    def answered(self, i: int) -> None:
        with self._lock:
            if self.failures[i]:
                log.warning("openai backend: %s answers again", self.urls[i])
            self.failures[i], self.down_until[i] = 0, 0.0

    def mark_down(self, i: int, why: str) -> bool:
        """Mark server ``i`` down; returns whether another server is up (the request can fail over at once)."""
        with self._lock:
            now = time.monotonic()
            if self.down_until[i] <= now:  # not already marked by a request that failed at the same time
                self.failures[i] += 1
                self.down_until[i] = now + min(MAX_DOWN_SECONDS, self.backoff * 2 ** (self.failures[i] - 1))
                if len(self.urls) > 1:
                    log.warning("openai backend: %s is down (%s); trying it again in %.0f s", self.urls[i], why,
                                self.down_until[i] - now)
            return any(self.down_until[k] <= now for k in range(len(self.urls)) if k != i)


class OpenAIBackend:
    """Generation through an OpenAI-compatible HTTP server (``get_backend("openai", model=NAME, base_url=...)``).

    Options: ``base_url`` (default http://127.0.0.1:8000/v1; a list is a fleet), ``base_urls`` (a fleet of servers
    of the same model: requests are spread over them, with fail-over), ``api_key_env`` (name of the environment
    variable holding the key; default OPENAI_API_KEY; no key is fine for local servers), ``concurrency`` (requests
    in flight per server, 8), ``requests_per_second`` (rate limit, None = off), ``max_retries`` (5), ``backoff``
    (first retry delay in seconds, doubling, capped at 30; also how long a server that stopped answering is left
    alone), ``timeout`` (seconds per HTTP request, 600; a server that times out counts as down), ``tokenizer``
    (local path of the served model's tokenizer: exact continuation and token counts), ``extra_body`` (dict
    merged into every request body), ``max_context`` (skip prompts longer than this minus max_new_tokens; needs
    ``tokenizer``).
    """

    name = "openai"

    def __init__(self, model: str, base_url: str | list[str] = "http://127.0.0.1:8000/v1",
                 base_urls: list[str] | None = None, api_key_env: str = "OPENAI_API_KEY", concurrency: int = 8,
                 requests_per_second: float | None = None, max_retries: int = 5,
                 backoff: float = 1.0, timeout: float = 600.0, tokenizer: str | None = None,
                 extra_body: dict | None = None, max_context: int | None = None,
                 chat_template_kwargs: dict | None = None):
        from skillfactory.generation import BackendError

        if not model:
            raise BackendError("openai backend: give the served model name as model=...")
        if concurrency < 1:
            raise BackendError(f"openai backend: option concurrency must be >= 1, got {concurrency}")
        if max_context and not tokenizer:
            raise BackendError("openai backend: option max_context needs option tokenizer (to count prompt tokens)")
        urls = list(base_urls) if base_urls is not None else [base_url] if isinstance(base_url, str) else list(base_url)
        if base_urls is not None and base_url != "http://127.0.0.1:8000/v1":
            raise BackendError("openai backend: give the servers as base_urls or as base_url, not both")
        if not urls or not all(isinstance(u, str) and u.startswith(("http://", "https://")) for u in urls):
            raise BackendError(f"openai backend: base_urls must be a non-empty list of http(s) URLs, got {urls!r}")
        self.model = model
        self.servers = ServerPool(urls, backoff)
        self.base_url = self.servers.urls[0]
        self.api_key = os.environ.get(api_key_env) if api_key_env else None
        self.concurrency = concurrency
        self.limiter = RateLimiter(requests_per_second)
        self.max_retries = max_retries
        self.backoff = backoff
        self.timeout = timeout
        self.extra_body = dict(extra_body or {})
        self.chat_template_kwargs = dict(chat_template_kwargs or {})  # sent as vLLM/SGLang's chat_template_kwargs
        self.max_context = max_context
        self.tokenizer = None
        if tokenizer:
            from transformers import AutoTokenizer

            try:
                self.tokenizer = AutoTokenizer.from_pretrained(tokenizer)
            except (OSError, ValueError, KeyError) as e:
                raise BackendError(f"openai backend: cannot load tokenizer {tokenizer}: {str(e).splitlines()[0]}") from None

    # ---- protocol ---------------------------------------------------------------------------------------------
    def count_tokens(self, text: str) -> int:
        if self.tokenizer is not None:
            return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])
        return math.ceil(len(text) / 4)

    def generate(self, requests: Sequence[GenerationRequest], params: SamplingParams,
                 progress: ProgressFn | None = None) -> list[list[Completion]]:
        out: list[list[Completion | None]] = [[None] * params.n for _ in requests]
        jobs: list[tuple[int, int, str, dict[str, Any]]] = []
        for i, req in enumerate(requests):
            skip = self._skip_reason(req, params)
            if skip:
                out[i] = [Completion("", 0, "skipped", skip) for _ in range(params.n)]
                continue
            for j in range(params.n):
                path, body = self.build_body(req, params, completion_seed(params.seed, req, j))
                jobs.append((i, j, path, body))
        if progress and len(jobs) < len(requests) * params.n:
            progress(len(requests) * params.n - len(jobs), 0)
        with ThreadPoolExecutor(max_workers=self.concurrency * len(self.servers.urls)) as pool:
            futures = {pool.submit(self._complete, path, body, params): (i, j) for i, j, path, body in jobs}
            try:
                for fut in as_completed(futures):
                    i, j = futures[fut]
                    out[i][j] = comp = fut.result()
                    if progress:
                        progress(1, comp.n_tokens)
            except BaseException:
                for f in futures:
                    f.cancel()
                raise
        return out  # type: ignore[return-value]

    # ---- request building -------------------------------------------------------------------------------------
    def build_body(self, req: GenerationRequest, params: SamplingParams, seed: int) -> tuple[str, dict[str, Any]]:
        """The endpoint path and JSON body for one completion."""
        body: dict[str, Any] = {"model": self.model, "n": 1, "temperature": params.temperature,
                                "top_p": params.top_p, "max_tokens": params.max_new_tokens, "seed": seed}
        if params.stop:
            body["stop"] = list(params.stop)
        if params.top_k > 0:
            body["top_k"] = params.top_k
        if req.prefix and self.tokenizer is not None:
            text = render_prompt(self.tokenizer, req, chat_template_kwargs=self.chat_template_kwargs)
            ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
            path, body["prompt"] = "/completions", ids
        elif req.prefix:
            path = "/chat/completions"
            body["messages"] = [*req.messages, {"role": "assistant", "content": req.prefix}]
            body["continue_final_message"], body["add_generation_prompt"] = True, False
        else:
            path, body["messages"] = "/chat/completions", list(req.messages)
        if path == "/chat/completions" and self.chat_template_kwargs:
            body["chat_template_kwargs"] = dict(self.chat_template_kwargs)
        return path, {**body, **self.extra_body}

    def _skip_reason(self, req: GenerationRequest, params: SamplingParams) -> str | None:
        if not self.max_context or self.tokenizer is None:
            return None
        text = render_prompt(self.tokenizer, req, chat_template_kwargs=self.chat_template_kwargs)
        n = len(self.tokenizer(text, add_special_tokens=False)["input_ids"])
        budget = self.max_context - params.max_new_tokens
        if n <= budget:
            return None
        return (f"prompt has {n} tokens; the context of {self.max_context} minus "
                f"max_new_tokens {params.max_new_tokens} leaves {max(budget, 0)}")

    # ---- HTTP -------------------------------------------------------------------------------------------------
    def _complete(self, path: str, body: dict[str, Any], params: SamplingParams) -> Completion:
        reply = self._post(path, body)
        try:
            choice = reply["choices"][0]
            text = choice["text"] if path == "/completions" else (choice["message"].get("content") or "")
        except (KeyError, IndexError, TypeError, AttributeError):
            from skillfactory.generation import BackendError

            raise BackendError(f"openai backend: unexpected reply to {path}: {str(reply)[:200]}") from None
        finish = "length" if choice.get("finish_reason") == "length" else "stop"
        if finish == "stop" and isinstance(choice.get("stop_reason"), str) and choice["stop_reason"] in params.stop:
            text += choice["stop_reason"]
        if params.stop:
            text, stopped = cut_at_stop(text, params.stop)
            finish = "stop" if stopped else finish
        usage = reply.get("usage") or {}
        n_tokens = usage.get("completion_tokens")
        return Completion(text, int(n_tokens) if isinstance(n_tokens, int) else self.count_tokens(text), finish)

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        from skillfactory.generation import BackendError

        data = json.dumps(body).encode()
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        last, attempts = "", 0
        while True:
            self.limiter.wait()
            server = self.servers.acquire()
            url = f"{self.servers.urls[server]}{path}"
            delay = min(MAX_DOWN_SECONDS, self.backoff * 2**attempts)
            try:
                with urllib.request.urlopen(urllib.request.Request(url, data, headers), timeout=self.timeout) as r:
                    reply = json.loads(r.read().decode())
                self.servers.answered(server)
                return reply
            except urllib.error.HTTPError as e:
                self.servers.answered(server)
                detail = e.read().decode(errors="replace")[:300]
                if e.code not in RETRY_STATUS:
                    raise BackendError(f"openai backend: {url} answered {e.code}: {detail}") from None
                last = f"HTTP {e.code}: {detail}"
                retry_after = e.headers.get("Retry-After") if e.headers else None
                if retry_after and retry_after.replace(".", "", 1).isdigit():
                    delay = min(MAX_DOWN_SECONDS, float(retry_after))
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError) as e:
                last = f"{type(e).__name__}: {getattr(e, 'reason', e)}"
                if self.servers.mark_down(server, last):
                    continue  # fail over to a server that is up, at once and without spending a retry
                delay = 0.0  # acquire() waits until the first down server may be tried again
            except json.JSONDecodeError:
                last = "reply is not JSON"
            finally:
                self.servers.release(server)
            attempts += 1
            if attempts > self.max_retries:
                where = url if len(self.servers.urls) == 1 else f"{path} on {len(self.servers.urls)} servers"
                raise BackendError(f"openai backend: {where} failed after {attempts} attempts ({last})")
            time.sleep(delay)
