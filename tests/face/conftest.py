"""Fixtures of the face tests: a portrait, landmarks, a tiny random-weight 19-d model bundle."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="session")
def assets():
    from cmet.face.assets import ensure

    return ensure()  # fast when `make setup` fetched them


@pytest.fixture(scope="session")
def mesher(assets):
    from cmet.face.landmarks import FaceMesh

    return FaceMesh()


@pytest.fixture(scope="session")
def astronaut_face():
    """The astronaut's face (skimage) cropped to 256x256 like the release portraits."""
    import cv2
    from skimage.data import astronaut

    return np.ascontiguousarray(cv2.resize(astronaut()[0:260, 110:370], (256, 256)))


@pytest.fixture(scope="session")
def astronaut_landmarks(mesher, astronaut_face):
    return mesher.mesh(astronaut_face, "astronaut")


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory):
    """A random-weight C-MET bundle in the 19-d AU space with 8-d speech and named banks."""
    import torch
    from omegaconf import OmegaConf

    from cmet.face.facs import D_EXPR
    from cmet.model.bundle import ModelBundle
    from cmet.model.connector import Connector

    torch.manual_seed(0)
    mcfg = {
        "name": "cmet",
        "d_model": 16,
        "n_layers": 1,
        "n_heads": 2,
        "ff_dim": 16,
        "dropout": 0.0,
        "window": 5,
        "conv_channels": 4,
        "conv_layers": 1,
    }
    conn = Connector.from_cfg(OmegaConf.create(mcfg), 8, D_EXPR, "difference").eval()
    rng = np.random.default_rng(0)
    emotions = ["neutral", "happy", "sad", "angry", "surprised", "fear", "disgusted"]
    banks = {e: rng.normal(size=(4, 8)).astype(np.float32) for e in emotions}
    b = ModelBundle(conn, mcfg, 8, D_EXPR, emotions, [], banks)
    return b.save(tmp_path_factory.mktemp("bundle") / "bundle")


@pytest.fixture(scope="session")
def short_video(tmp_path_factory, astronaut_face):
    """12 frames of the astronaut, slightly moving, with a 16 kHz tone as audio: (mp4, wav)."""
    import cv2
    import soundfile as sf

    from cmet.media import write_video

    d = tmp_path_factory.mktemp("video")
    frames = []
    for i in range(12):
        M = np.float32([[1, 0, np.sin(i / 3) * 2], [0, 1, 0]])
        frames.append(cv2.warpAffine(astronaut_face, M, (256, 256), borderMode=cv2.BORDER_REPLICATE))
    wav = d / "speech.wav"
    t = np.arange(int(16000 * 12 / 25)) / 16000
    sf.write(wav, (0.2 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), 16000)
    mp4 = write_video(d / "astronaut.mp4", np.stack(frames), 25.0, wav)
    return mp4, wav


@pytest.fixture(scope="session")
def trained_bundle(tmp_path_factory):
    """A small C-MET bundle in the 19-AU space trained here (data=release_au: ../shared, else the
    vendored release vectors; 300 steps, ~1-2 min on 2 cores) -> its folder. For the slow edit tests."""
    import torch

    from cmet.config import compose
    from cmet.train import train

    torch.set_num_threads(2)
    out = tmp_path_factory.mktemp("edit_bundle")
    cfg = compose(
        [
            "data=release_au",
            "train.steps=300",
            "train.eval_every=300",
            "train.checkpoint_every=300",
            "train.quiet=true",
            f"paths.work_dir={out}/work",
        ]
    )
    return train(cfg, out_dir=out / "run")["bundle_dir"]
