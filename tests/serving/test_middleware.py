"""The service's ASGI middleware on a small app: API key, per-client rate limit, CORS, the one error
body; and the config that turns them on (serving.settings, CMET_SERVING_SET)."""

from __future__ import annotations

import logging

import pytest
from omegaconf import OmegaConf

from cmet.errors import ConfigError

KEY = "k" * 24


def _app(auth: dict | None = None, rate: dict | None = None, cors: list | None = None):
    from starlette.applications import Starlette
    from starlette.middleware.cors import CORSMiddleware
    from starlette.responses import JSONResponse, PlainTextResponse
    from starlette.routing import Route

    from serving.middleware import AccessMiddleware, ErrorBodyMiddleware, cors_options

    async def ok(request):
        return PlainTextResponse("ok")

    async def boom(request):
        return JSONResponse([{"error": "[bad_input] video: /tmp/bentoml-request-x/face.mp4 is broken"}], 400)

    async def crash(request):
        raise RuntimeError("secret /work/main/serving/x.py detail")

    app = Starlette(
        routes=[
            Route("/edit", ok, methods=["POST"]),
            Route("/metrics", ok),
            Route("/healthz", ok),
            Route("/ui/index.html", ok),
            Route("/boom", boom),
            Route("/crash", crash),
        ]
    )
    auth = {
        "enabled": False,
        "key_env": "CMET_TEST_KEY",
        "key_file": None,
        "remote_without_key": False,
        **(auth or {}),
    }
    auth = OmegaConf.create(auth)
    rate = OmegaConf.create({"requests_per_minute": 0, "burst": 5, **(rate or {})})
    app = AccessMiddleware(app, auth=auth, rate_limit=rate)
    if cors:
        app = CORSMiddleware(app, **cors_options(OmegaConf.create({"origins": cors})))
    return ErrorBodyMiddleware(app)


def _client(app, host: str = "127.0.0.1"):
    from starlette.testclient import TestClient

    return TestClient(app, raise_server_exceptions=False, client=(host, 50000))


def test_api_key_guards_everything_but_health_and_the_page(monkeypatch):
    monkeypatch.setenv("CMET_TEST_KEY", KEY)
    c = _client(_app(auth={"enabled": True}))
    for path, method in (("/edit", "post"), ("/metrics", "get")):
        r = getattr(c, method)(path)
        assert r.status_code == 401 and r.json()["error"] == "unauthorized", path
        assert (
            getattr(c, method)(path, headers={"Authorization": "Bearer wrong-key-of-some-length"}).status_code
            == 401
        )
        assert getattr(c, method)(path, headers={"Authorization": f"Bearer {KEY}"}).status_code == 200
        assert getattr(c, method)(path, headers={"X-API-Key": KEY}).status_code == 200
    assert c.get("/healthz").status_code == 200 and c.get("/ui/index.html").status_code == 200


def test_without_a_key_only_loopback_clients_are_served(monkeypatch):
    remote = _client(_app(), host="10.1.2.3")
    r = remote.post("/edit")
    assert r.status_code == 403 and r.json()["error"] == "forbidden" and "loopback" in r.json()["message"]
    assert remote.get("/metrics").status_code == 403 and remote.get("/healthz").status_code == 200
    assert _client(_app(), host="::1").post("/edit").status_code == 200
    assert _client(_app(auth={"remote_without_key": True}), host="10.1.2.3").post("/edit").status_code == 200
    monkeypatch.setenv("CMET_TEST_KEY", KEY)
    keyed = _client(_app(auth={"enabled": True}), host="10.1.2.3")  # with a key, remote clients are fine
    assert keyed.post("/edit", headers={"X-API-Key": KEY}).status_code == 200


def test_auth_on_without_a_key_does_not_start(monkeypatch, tmp_path):
    monkeypatch.delenv("CMET_TEST_KEY", raising=False)
    with pytest.raises(ConfigError, match="no API key is set"):
        _app(auth={"enabled": True})
    short = tmp_path / "key"
    short.write_text("short\n")
    with pytest.raises(ConfigError, match="at least 16"):
        _app(auth={"enabled": True, "key_file": str(short)})
    good = tmp_path / "key2"
    good.write_text(KEY + "\n")
    c = _client(_app(auth={"enabled": True, "key_file": str(good)}))
    assert c.post("/edit", headers={"X-API-Key": KEY}).status_code == 200


def test_rate_limit_per_client_with_retry_after():
    c = _client(_app(rate={"requests_per_minute": 6, "burst": 3}))
    codes = [c.post("/edit").status_code for _ in range(5)]
    assert codes == [200, 200, 200, 429, 429]
    r = c.post("/edit")
    assert r.json()["error"] == "rate_limited" and int(r.headers["retry-after"]) >= 1
    assert c.get("/healthz").status_code == 200  # health checks are never limited


def test_rate_limiter_refills_and_separates_clients():
    from serving.middleware import RateLimiter

    rl = RateLimiter(per_minute=60, burst=2)
    assert rl.take("a", now=0.0) == 0 and rl.take("a", now=0.0) == 0
    assert rl.take("a", now=0.0) == pytest.approx(1.0)
    assert rl.take("b", now=0.0) == 0  # another client has its own bucket
    assert rl.take("a", now=1.01) == 0  # one token a second


def test_cors_only_for_configured_origins():
    c = _client(_app(cors=["https://ok.example"]))
    pre = {"Origin": "https://ok.example", "Access-Control-Request-Method": "POST"}
    r = c.options("/edit", headers=pre)
    assert r.status_code == 200 and r.headers["access-control-allow-origin"] == "https://ok.example"
    r = c.options("/edit", headers={**pre, "Origin": "https://evil.example"})
    assert r.status_code == 400 and "access-control-allow-origin" not in r.headers
    c = _client(_app())
    assert (
        "access-control-allow-origin" not in c.post("/edit", headers={"Origin": "https://ok.example"}).headers
    )


def test_error_bodies_are_one_shape_without_paths():
    c = _client(_app())
    r = c.get("/boom")
    assert r.status_code == 400 and r.json() == {"error": "bad_input", "message": "video: face.mp4 is broken"}
    r = c.get("/crash")
    assert r.status_code == 500 and r.json()["error"] == "internal_error" and "/work" not in r.text
    r = c.get("/nothing")
    assert r.status_code == 404 and r.json() == {"error": "not_found", "message": "Not Found"}


def test_env_overrides_reach_the_typed_config(monkeypatch):
    from serving.settings import serving_cfg

    monkeypatch.setenv("CMET_SERVING_SET", "auth.enabled=true rate_limit.requests_per_minute=0")
    cfg = serving_cfg()
    assert cfg.auth.enabled is True and cfg.rate_limit.requests_per_minute == 0
    monkeypatch.setenv("CMET_SERVING_SET", "auth.enabeld=true")
    with pytest.raises(ConfigError, match="enabeld"):
        serving_cfg()


def test_a_client_error_is_logged_as_one_line(caplog):
    from bentoml.exceptions import InvalidArgument

    from serving.hardening import OneLineClientErrors

    log = logging.getLogger("test.oneline")
    log.addFilter(OneLineClientErrors())
    with caplog.at_level(logging.INFO, logger="test.oneline"):
        try:
            raise InvalidArgument("[unknown_emotion] unknown emotion 'joy'")
        except InvalidArgument:
            log.error("Exception on %s [%s]", "/edit", "POST", exc_info=True)
        try:
            raise RuntimeError("a real bug")
        except RuntimeError:
            log.error("Exception on %s [%s]", "/edit", "POST", exc_info=True)
    first, second = caplog.records
    assert (
        first.getMessage() == "400 /edit: [unknown_emotion] unknown emotion 'joy'" and first.exc_info is None
    )
    assert second.exc_info is not None  # a server error keeps its traceback
    assert caplog.text.count("Traceback") == 1


def test_serve_refuses_a_public_host_without_auth(monkeypatch):
    from typer.testing import CliRunner

    from serving.commands import app

    monkeypatch.delenv("CMET_SERVING_SET", raising=False)
    r = CliRunner().invoke(app, ["serve", "--host", "0.0.0.0"])
    assert isinstance(r.exception, ConfigError) and "publishes every route" in str(r.exception)


def test_bentoml_traffic_answers_get_the_one_body():
    import asyncio

    from bentoml._internal.server.http.traffic import MaxConcurrencyMiddleware

    import serving.service  # noqa: F401  (applies serving.hardening)

    async def slow(scope, receive, send):
        await asyncio.sleep(0.2)

    mw = MaxConcurrencyMiddleware(slow, max_concurrency=1)
    sent: list = []

    async def send(message):
        sent.append(message)

    async def main():
        scope = {"type": "http", "path": "/edit", "method": "POST", "headers": []}
        await asyncio.gather(mw(scope, None, send), mw(scope, None, send))

    asyncio.run(main())
    import json

    assert sent[0]["status"] == 429
    assert json.loads(sent[1]["body"]) == {"error": "rate_limited", "message": "Too many requests"}


def test_work_folders_of_dead_servers_are_removed(tmp_path, monkeypatch):
    import os

    from serving.settings import claim_work_dir, serving_cfg

    monkeypatch.setenv("CMET_SERVING_SET", f"work_dir={tmp_path}")
    cfg = serving_cfg()
    dead = tmp_path / "999999999"
    (dead / "requests" / "req-x").mkdir(parents=True)
    alive = tmp_path / "1"  # pid 1 always exists
    alive.mkdir()
    mine = claim_work_dir(cfg)
    assert mine == tmp_path / str(os.getpid()) and mine.is_dir()
    assert not dead.exists() and alive.exists()
