"""Fixtures of the model tests: a tiny simulator config and ONE tiny training run per session."""

from __future__ import annotations

import pytest

TINY = [
    "data.identities={train: 6, val: 1, test: 3}",
    "data.clips_per_cell=5",
    "data.frames=[20, 40]",
    "data.sentences=12",
    "model.d_model=32",
    "model.n_layers=1",
    "model.n_heads=2",
    "model.ff_dim=64",
    "model.conv_channels=8",
    "model.dropout=0.0",
    "train.batch_size=32",
    "train.steps=200",
    "train.warmup_steps=10",
    "train.lr=3e-3",
    "train.eval_every=100",
    "train.checkpoint_every=100",
    "train.log_every=25",
    "train.k_clips=5",
    "train.quiet=true",
    "train.num_threads=1",
    "eval.k_clips=5",
    "eval.n_draws=2",
    "device=cpu",
]


@pytest.fixture(scope="session")
def tiny_overrides():
    return list(TINY)


@pytest.fixture(scope="session")
def tiny_cfg_factory(tmp_path_factory):
    """tiny_cfg_factory(*extra_overrides) -> DictConfig with every run output under a temp folder."""
    from cmet.config import compose

    work = tmp_path_factory.mktemp("work")

    def make(*extra: str):
        return compose([f"paths.work_dir={work}", *TINY, *extra])

    return make


@pytest.fixture(scope="session")
def tiny_features(tiny_cfg_factory):
    from cmet.data import build_feature_set

    return build_feature_set(tiny_cfg_factory())


@pytest.fixture(scope="session")
def tiny_run(tiny_cfg_factory, tiny_features, tmp_path_factory):
    """(metrics, out_dir, cfg) of one tiny training run (C-MET + baselines) shared by the session."""
    from cmet.train import train

    cfg = tiny_cfg_factory()
    out = tmp_path_factory.mktemp("tiny_run")
    metrics = train(cfg, features=tiny_features, out_dir=out)
    return metrics, out, cfg


@pytest.fixture(scope="session")
def tiny_bundle(tiny_run):
    from cmet.model.bundle import ModelBundle

    return ModelBundle.load(tiny_run[0]["bundle_dir"])
