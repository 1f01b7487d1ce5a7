"""The openai backend over a fleet of servers: requests spread over them, fail-over when one stops answering,
re-probe when it is back; the same completions (seeds) whichever server answers. Stub servers here; two real
``transformers serve`` servers in test_openai_serve.py."""

from __future__ import annotations

import logging
import time
from http.server import ThreadingHTTPServer

import pytest

from skillfactory.generation import BackendError, SamplingParams, get_backend

from .test_openai import FakeServer, req

PARAMS = SamplingParams(n=3, max_new_tokens=4, seed=7)
REQUESTS = [req(f"q{i}") for i in range(6)]


def texts(out):
    return [[c.text for c in comps] for comps in out]


def test_requests_are_spread_and_match_one_server():
    with FakeServer(delay=0.02) as one:
        alone = texts(get_backend("openai", "m", base_url=one.url).generate(REQUESTS, PARAMS))
    with FakeServer(delay=0.02) as a, FakeServer(delay=0.02) as b:
        fleet = get_backend("openai", "m", base_urls=[a.url, b.url], concurrency=2)
        assert texts(fleet.generate(REQUESTS, PARAMS)) == alone
        assert len(a.bodies) + len(b.bodies) == 18 and min(len(a.bodies), len(b.bodies)) >= 6
        assert a.max_in_flight <= 2 and b.max_in_flight <= 2
        as_list = get_backend("openai", "m", base_url=[a.url, b.url])  # base_url as a list is a fleet too
        assert texts(as_list.generate(REQUESTS[:2], PARAMS)) == alone[:2]


def test_a_server_that_stops_answering_is_failed_over_without_spending_retries(caplog):
    with FakeServer() as gone:
        dead_url = gone.url
    with FakeServer() as one:
        alone = texts(get_backend("openai", "m", base_url=one.url).generate(REQUESTS, PARAMS))
    with FakeServer() as live, caplog.at_level(logging.WARNING, logger="skillfactory.generation.openai"):
        fleet = get_backend("openai", "m", base_urls=[dead_url, live.url], max_retries=0, backoff=5)
        assert texts(fleet.generate(REQUESTS, PARAMS)) == alone
        assert len(live.bodies) == 18  # every completion once, all on the live server
    assert any("is down" in r.message and dead_url in r.message for r in caplog.records)


def test_a_down_server_is_tried_again_and_used_when_back():
    with FakeServer() as a, FakeServer() as b:
        port = a.httpd.server_address[1]
        a.httpd.shutdown()
        a.httpd.server_close()
        fleet = get_backend("openai", "m", base_urls=[a.url, b.url], backoff=0.05)
        fleet.generate(REQUESTS[:2], PARAMS)
        assert a.bodies == [] and len(b.bodies) == 6
        a.httpd = ThreadingHTTPServer(("127.0.0.1", port), a.httpd.RequestHandlerClass)  # the server is back
        a.thread = type(a.thread)(target=a.httpd.serve_forever, daemon=True)
        a.thread.start()
        time.sleep(0.1)  # past its down window
        fleet.generate(REQUESTS, PARAMS)
        assert len(a.bodies) > 0


def test_every_server_down_fails_after_the_retries():
    urls = []
    for _ in range(2):
        with FakeServer() as s:
            urls.append(s.url)
    fleet = get_backend("openai", "m", base_urls=urls, max_retries=2, backoff=0.01)
    with pytest.raises(BackendError, match="failed after 3 attempts"):
        fleet.generate(REQUESTS[:1], SamplingParams(n=1))


def test_fleet_options_are_validated():
    with pytest.raises(BackendError, match="not both"):
        get_backend("openai", "m", base_url="http://a:1/v1", base_urls=["http://b:1/v1"])
    with pytest.raises(BackendError, match="non-empty list"):
        get_backend("openai", "m", base_urls=[])
    with pytest.raises(BackendError, match="non-empty list"):
        get_backend("openai", "m", base_urls=["localhost:8000"])
