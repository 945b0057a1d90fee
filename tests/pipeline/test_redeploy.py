"""cmet redeploy: the champion's bento is built, the restart command runs, the service must then report
the champion's version (a fake service whose answer the restart command changes)."""

from __future__ import annotations

import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from cmet.config import compose
from cmet.errors import ModelError
from flows import registry as R


@pytest.fixture
def champion(tmp_path):
    import mlflow

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    mlflow.set_tracking_uri(uri)
    with mlflow.start_run() as r:
        mlflow.log_text("{}", "bundle/bundle.json")
    c = R.client(uri)
    for _ in range(2):
        R.register_candidate(c, "cmet", f"runs:/{r.info.run_id}/bundle", r.info.run_id, {})
    R.apply_gate(c, "cmet", "2", passed=True)
    yield uri
    mlflow.set_tracking_uri(None)


@pytest.fixture
def service(tmp_path):
    """A stand-in for the bento service: POST /version answers the version written in a file."""
    state = tmp_path / "served_version"
    state.write_text("1")

    class H(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            self.rfile.read(int(self.headers["Content-Length"]))
            body = json.dumps({"version": state.read_text()}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    srv = HTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_port}", state
    srv.shutdown()


def test_redeploy_builds_restarts_and_checks_the_served_version(champion, service, tmp_path, monkeypatch):
    import serving.build
    from flows.redeploy import redeploy

    built = []
    monkeypatch.setattr(
        serving.build, "build_bento", lambda uri, cfg: built.append(uri) or "cmet-service:new"
    )
    url, state = service
    cfg = compose([f"pipeline.tracking_uri={champion}", "pipeline.redeploy.wait_s=5"])
    # the service still serves v1 and nothing restarts it: an error naming both versions
    with pytest.raises(ModelError, match=r"cmet v2, but the service .* still serves v1"):
        redeploy(cfg, restart="", url=url)
    assert built == ["models:/cmet@champion"]
    # the restart command (sees the new tag) makes the service serve the champion
    cmd = f"{sys.executable} -c \"import os,pathlib; pathlib.Path('{state}').write_text('2'); print(os.environ['CMET_BENTO'])\""
    res = redeploy(cfg, restart=cmd, url=url)
    assert res == {"version": "2", "bento": "cmet-service:new", "restarted": True, "served": "2"}
    # no service running: built, nothing to check
    res = redeploy(cfg, restart="", url="http://127.0.0.1:9")
    assert res["served"] is None and res["version"] == "2"
