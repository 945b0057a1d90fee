"""Serving fixtures: a small model folder and an in-process client of the service's ASGI app.

The fast tests use a real ModelBundle saved and loaded from disk with an untrained (random-weight)
connector of the small config: enough for the plumbing (limits, errors, temp folders, schema). The
slow tests use a trained bundle (cmet.train.train) or the registry champion.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

EMOTIONS = ["angry", "happy", "neutral", "sad"]
D_SPEECH, D_EXPR = 16, 19


def make_model_dir(
    folder: Path, n_clips: int = 5, seed: int = 0, d_speech: int = D_SPEECH, encoder=None
) -> Path:
    """bundle/ (random-weight connector) + serving.json, the layout serving.build imports.
    ``encoder``: the bundle's speech-encoder spec (default: simulated features, no audio encoder)."""
    import torch
    from omegaconf import OmegaConf

    from cmet.model.bundle import ModelBundle
    from cmet.model.connector import Connector

    torch.manual_seed(seed)
    mcfg = {
        "name": "cmet",
        "d_model": 32,
        "n_layers": 1,
        "n_heads": 2,
        "ff_dim": 32,
        "dropout": 0.0,
        "window": 5,
        "conv_channels": 8,
        "conv_layers": 1,
    }
    conn = Connector.from_cfg(OmegaConf.create(mcfg), d_speech, D_EXPR).eval()
    rng = np.random.default_rng(seed)
    banks = {e: rng.normal(size=(n_clips + i, d_speech)).astype(np.float32) for i, e in enumerate(EMOTIONS)}
    b = ModelBundle(
        conn,
        mcfg,
        d_speech,
        D_EXPR,
        [e for e in EMOTIONS],
        [],
        banks,
        metrics={"acc_emo": 0.5},
        meta={"speech_encoder": encoder or {"name": "simulated", "dim": d_speech, "config": {}}},
    )
    b.save(folder / "bundle")
    (folder / "serving.json").write_text(
        json.dumps({"registered_name": "cmet", "version": "7", "alias": "champion", "source": "test"})
    )
    return folder


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory) -> Path:
    return make_model_dir(tmp_path_factory.mktemp("serving_model"))


@pytest.fixture(scope="session")
def sample_video(tmp_path_factory) -> Path:
    from serving.sample import synthetic_face_video

    return synthetic_face_video(tmp_path_factory.mktemp("video") / "face.mp4", seconds=1.0, size=128)


@pytest.fixture(scope="session")
def client(model_dir):
    """A starlette TestClient on the service's ASGI app (the service instance lives in-process)."""
    from starlette.testclient import TestClient

    old = os.environ.get("CMET_SERVE_MODEL_DIR")
    os.environ["CMET_SERVE_MODEL_DIR"] = str(model_dir)
    from _bentoml_impl.tasks import Sqlite3Store
    from bentoml._internal.configuration.containers import BentoMLContainer

    from serving.service import CmetService

    # `bentoml serve` creates the task-result table before it starts workers; in-process we do it here
    # (on a fresh machine BENTOML_HOME has no task_result.db yet)
    Sqlite3Store.init_db(BentoMLContainer.result_store_file.get())
    try:
        with TestClient(CmetService.to_asgi(), raise_server_exceptions=False) as c:
            yield c
    finally:
        if old is None:
            os.environ.pop("CMET_SERVE_MODEL_DIR", None)
        else:
            os.environ["CMET_SERVE_MODEL_DIR"] = old
