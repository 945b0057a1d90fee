"""Fixtures of the pipeline tests: a tiny hand-made feature set (independent of the simulator)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import numpy as np
import pandas as pd
import pytest

from cmet.data.features import FeatureSet

EMOS = ["angry", "happy", "neutral"]


def make_featureset(n_per_cell: int = 3, d_a: int = 8, d_v: int = 4, seed: int = 0) -> FeatureSet:
    rng = np.random.default_rng(seed)
    rows = []
    for ident, split in (("id1", "train"), ("id2", "train"), ("id3", "val"), ("id4", "test")):
        for emo in EMOS:
            for level in [1] if emo == "neutral" else [1, 2]:
                for k in range(n_per_cell):
                    n = int(rng.integers(10, 20))
                    rows.append(
                        dict(
                            clip_id=f"{ident}_{emo}_{level}_{k}",
                            identity=ident,
                            emotion=emo,
                            level=level,
                            split=split,
                            n_frames=n,
                            fps=25.0,
                            duration_s=n / 25.0,
                        )
                    )
    clips = pd.DataFrame(rows)
    total = int(clips["n_frames"].sum())
    speech = rng.normal(size=(len(clips), d_a)).astype(np.float32)
    expr = rng.normal(size=(total, d_v)).astype(np.float32)
    spec = {"name": "simulated", "dim": d_a, "config": {}}
    return FeatureSet(clips, speech, expr, meta={"source": "hand-made", "speech_encoder": spec})


@pytest.fixture
def tiny_fs() -> FeatureSet:
    return make_featureset()


@pytest.fixture
def make_fs():
    """make_fs(n_per_cell=3, d_a=8, d_v=4, seed=0) -> a hand-made FeatureSet."""
    return make_featureset


@pytest.fixture(scope="session")
def prefect_harness():
    """One temporary Prefect API (its own SQLite) for the whole test session."""
    from flows.settings import configure_prefect_env

    configure_prefect_env()
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=240):
        yield


@pytest.fixture
def pipeline_overrides(tmp_path):
    """Overrides that keep every store of a pipeline run under tmp_path."""
    return [
        "experiment=fast",
        f"paths.work_dir={tmp_path}/work",
        f"pipeline.tracking_uri=sqlite:///{tmp_path}/mlflow.db",
        "pipeline.bento=false",
    ]


class _Hook(BaseHTTPRequestHandler):
    received: list = []

    def do_POST(self):  # noqa: N802 (http.server's name)
        n = int(self.headers["Content-Length"])
        _Hook.received.append(json.loads(self.rfile.read(n)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *a):
        pass


@pytest.fixture
def webhook():
    """A local webhook receiver -> (its URL, the list of JSON bodies POSTed to it)."""
    srv = HTTPServer(("127.0.0.1", 0), _Hook)
    _Hook.received = []
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_port}/hook", _Hook.received
    srv.shutdown()
