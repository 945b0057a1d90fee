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
    from serving.service import CmetService

    try:
        with TestClient(
            CmetService.to_asgi(), raise_server_exceptions=False, client=("127.0.0.1", 50000)
        ) as c:
            yield c
    finally:
        if old is None:
            os.environ.pop("CMET_SERVE_MODEL_DIR", None)
        else:
            os.environ["CMET_SERVE_MODEL_DIR"] = old


@pytest.fixture(scope="session")
def trained_bundle(tmp_path_factory) -> Path:
    """A real C-MET bundle for the slow served tests: CMET_TEST_BUNDLE, else a small one trained here on
    the release features (data=release_au: ../shared, else the vendored copy)."""
    if os.environ.get("CMET_TEST_BUNDLE"):
        return Path(os.environ["CMET_TEST_BUNDLE"])
    import torch

    from cmet.config import compose
    from cmet.train import train

    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("train")
    steps = ["train.steps=150", "train.batch_size=64", "train.eval_every=150", "train.checkpoint_every=150"]
    cfg = compose(["data=release_au", *steps, f"paths.work_dir={out}/work"])
    return Path(train(cfg, out_dir=out / "run")["bundle_dir"])


def talking_clip(dst: Path, seconds: float) -> Path:
    """``seconds`` of the release's MEAD video (looped; ../shared), else the synthetic talking face."""
    import subprocess

    from cmet.config import compose
    from cmet.media import ffmpeg_exe
    from serving.sample import RELEASE_VIDEO, synthetic_face_video

    src = Path(str(compose([]).paths.release_dir)) / RELEASE_VIDEO
    if not src.is_file():
        return synthetic_face_video(dst, seconds=seconds, size=256)
    cmd = [ffmpeg_exe(), "-y", "-v", "error", "-stream_loop", "-1", "-i", str(src), "-t", f"{seconds:g}"]
    cmd += [
        "-r",
        "25",
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-pix_fmt",
        "yuv420p",
        "-c:a",
        "aac",
        str(dst),
    ]
    subprocess.run(cmd, check=True, capture_output=True)
    return dst


def serve_model(model_dir: Path, env: dict | None = None, **settings: str):
    """The service on a free loopback port over ``model_dir``; ``settings``: serving config overrides
    (``rate_limit__requests_per_minute="0"`` -> ``rate_limit.requests_per_minute=0``)."""
    from serving.server import ServedBento

    dotted = " ".join(f"{k.replace('__', '.')}={v}" for k, v in settings.items())
    env = {**(env or {}), **({"CMET_SERVING_SET": dotted} if dotted else {})}
    return ServedBento("serving.service:CmetService", model_dir=model_dir, env=env, ready_timeout=400)
