"""The gate stage against a real registry (MLflow SQLite in tmp) holding a real trained champion:

* with the FULL default gate set, a candidate that passes every absolute gate and beats speech-direct
  but is less accurate than the champion (beyond the margin) is refused, on that check alone;
* when the evaluation set changed (other eval hash), the champion is re-evaluated from its registered
  bundle on the new set: its stale tags are not used;
* the registered pyfunc model loads from ``models:/`` and predicts what the bundle predicts.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow  # one small training run + an MLflow SQLite store (~1-2 min on 2 cores)

NAME = "cmet"
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
    "train.batch_size=32",
    "train.steps=80",
    "train.warmup_steps=10",
    "train.lr=3e-3",
    "train.eval_every=80",
    "train.checkpoint_every=80",
    "train.k_clips=5",
    "train.quiet=true",
    "train.num_threads=1",
    "eval.k_clips=5",
    "eval.n_draws=2",
    "pipeline.latency_frames=50",
    "device=cpu",
]


@pytest.fixture(scope="module")
def champion(tmp_path_factory):
    """(cfg, fs_dir, bundle_dir, measured metrics) of a champion registered as v1 (pyfunc + bundle)."""
    import mlflow

    from cmet.config import compose
    from cmet.data import build_feature_set
    from cmet.train import train
    from flows import registry as R
    from flows.pyfunc_model import CmetPyfunc, signature

    tmp = tmp_path_factory.mktemp("gate_champion")
    uri = f"sqlite:///{tmp}/mlflow.db"
    cfg = compose([f"paths.work_dir={tmp}/work", f"pipeline.tracking_uri={uri}", *TINY])
    fs = build_feature_set(cfg)
    fs_dir = str(fs.save(tmp / "features"))
    metrics = train(cfg, features=fs, out_dir=tmp / "run")
    bundle_dir = metrics["bundle_dir"]
    mlflow.set_tracking_uri(uri)
    exp = mlflow.create_experiment("cmet", artifact_location=(tmp / "art").as_uri())
    with mlflow.start_run(experiment_id=exp) as run:
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=CmetPyfunc(),
            artifacts={"bundle": bundle_dir},
            signature=signature(fs.d_expr),
            pip_requirements=["cmet-ops"],
        )
    c = R.client(uri)
    measured = {k: float(v) for k, v in metrics.items() if isinstance(v, int | float)}
    tags = {f"metric.{k}": f"{v:.6g}" for k, v in measured.items()}
    v, _ = R.register_candidate(c, NAME, info.model_uri, run.info.run_id, {**tags, "eval_hash": "E1"})
    R.set_champion(c, NAME, v, "test")
    return cfg, fs_dir, bundle_dir, measured, c


@pytest.fixture
def gate_fn(champion, monkeypatch):
    """The pipeline's gate stage (the task's function, outside a flow run: a plain logger)."""
    import mlflow

    from flows.stages import evaluate as stage

    mlflow.set_tracking_uri(champion[0].pipeline.tracking_uri)
    monkeypatch.setattr(stage, "get_run_logger", lambda: logging.getLogger("gate"))
    return stage.gate.fn


def _cd(cfg):
    from omegaconf import OmegaConf

    return OmegaConf.to_container(cfg, resolve=True)


def test_full_gate_set_refuses_a_less_accurate_candidate(champion, gate_fn):
    cfg, fs_dir, _, measured, c = champion
    names = set(cfg.gates.absolute)
    assert {"acc_emo", "acc_emo_extended", "latency"} <= names and cfg.gates.relative.champion_margin < 0.1
    assert cfg.gates.relative.baseline == "acc_emo/speech_direct"
    margin = float(cfg.gates.relative.champion_margin)
    # the registry's record of the champion on this evaluation set (E1): 0.8
    c.set_model_version_tag(NAME, "1", "metric.acc_emo/cmet", "0.8")
    ok = {"acc_emo_ext/cmet": 0.9, "acc_emo/speech_direct": 0.0, "latency_ms_per_frame": 1.0}
    try:
        # worse than the champion beyond the margin, above every absolute bar and the baseline
        worse = gate_fn(_cd(cfg), {**ok, "acc_emo/cmet": 0.8 - margin - 0.05}, "E1", fs_dir)
        within = gate_fn(_cd(cfg), {**ok, "acc_emo/cmet": 0.8 - margin / 2}, "E1", fs_dir)
    finally:
        c.set_model_version_tag(NAME, "1", "metric.acc_emo/cmet", f"{measured['acc_emo/cmet']:.6g}")
    failed = [ch["name"] for ch in worse["report"]["checks"] if not ch["passed"]]
    assert not worse["passed"] and failed == ["not_worse_than_champion"], worse["summary"]
    assert worse["champion_before"] == "1" and worse["champion_metrics"]["acc_emo/cmet"] == 0.8
    assert within["passed"], within["summary"]  # within the margin: promoted


def test_champion_is_re_evaluated_when_the_evaluation_set_changes(champion, gate_fn):
    from cmet.data.features import FeatureSet
    from cmet.evaluate import evaluate
    from cmet.model.bundle import ModelBundle

    cfg, fs_dir, bundle_dir, measured, c = champion
    # the champion's tags claim 0.99 on the OLD set; the new set must be measured, not read
    c.set_model_version_tag(NAME, "1", "metric.acc_emo/cmet", "0.99")
    c.set_model_version_tag(NAME, "1", "eval_hash", "E-old")
    cand = {
        "acc_emo/cmet": 0.9,
        "acc_emo_ext/cmet": 0.9,
        "acc_emo/speech_direct": 0.0,
        "latency_ms_per_frame": 1.0,
    }
    try:
        res = gate_fn(_cd(cfg), cand, "E-new", fs_dir)
        stale = gate_fn(_cd(cfg), cand, "E-old", fs_dir)
    finally:
        c.set_model_version_tag(NAME, "1", "metric.acc_emo/cmet", f"{measured['acc_emo/cmet']:.6g}")
        c.set_model_version_tag(NAME, "1", "eval_hash", "E1")
    direct = evaluate(ModelBundle.load(bundle_dir), FeatureSet.load(fs_dir), cfg, Path(fs_dir).parent / "ev")
    got = res["champion_metrics"]["acc_emo/cmet"]
    assert got == pytest.approx(direct["acc_emo/cmet"], abs=1e-6) and not math.isclose(got, 0.99)
    assert res["passed"], res["summary"]  # 0.9 beats the re-measured champion
    assert not stale["passed"]  # the same eval hash trusts the tags (0.99): refused


def test_registered_pyfunc_loads_and_predicts(champion):
    import mlflow
    import pandas as pd

    from cmet.data.features import FeatureSet
    from cmet.model.bundle import ModelBundle

    cfg, fs_dir, bundle_dir, _, _ = champion
    mlflow.set_tracking_uri(cfg.pipeline.tracking_uri)
    model = mlflow.pyfunc.load_model(f"models:/{NAME}@champion")
    fs = FeatureSet.load(fs_dir)
    codes = fs.split("test").frames(0).astype(np.float32)
    df = pd.DataFrame(codes, columns=[f"expr_{i}" for i in range(codes.shape[1])])
    out = model.predict(df, params={"emotion": "happy", "intensity": 1.0})
    want = ModelBundle.load(bundle_dir).edit_codes(codes, "happy", intensity=1.0)
    assert out.shape == codes.shape
    np.testing.assert_allclose(out.to_numpy(), want, atol=1e-5)
    assert np.abs(want - codes).max() > 1e-3  # the prediction is an edit, not the input back
    zero = model.predict(df, params={"emotion": "happy", "intensity": 0.0})
    np.testing.assert_allclose(zero.to_numpy(), codes, atol=1e-5)
