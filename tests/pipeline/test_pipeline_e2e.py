"""End-to-end runs of the flow (slow: real training on the simulator, several minutes on 2 cores).

* a full run leaves a champion, MLflow parent + trial + final runs with the artifacts; a second run
  with unchanged data and config is served from the cache (faster, no new version);
* a deliberately worse candidate (one training step) is registered but not promoted; rollback works;
* a run killed during training resumes from its last checkpoint.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import pytest

from flows import registry as R

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def _runs(tmp_path):
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path}/mlflow.db")
    return mlflow.search_runs(experiment_names=["cmet"], output_format="list")


def test_full_run_cache_worse_candidate_rollback(tmp_path, prefect_harness, pipeline_overrides, monkeypatch):
    import shutil

    from cmet import hashing
    from flows.pipeline import run_pipeline

    # the library code is hashed into the cache keys (a code change recomputes); teammates commit to
    # cmet/ while this test runs, so the keys hash a private copy of it, which the test edits itself
    code = tmp_path / "code"
    shutil.copytree(ROOT / "cmet", code / "cmet", ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(hashing, "ROOT", code)

    ov = [
        *pipeline_overrides,
        "pipeline.tune.steps=10",
        "train.steps=20",
        "gates.relative.champion_margin=0.0",
    ]
    t0 = time.perf_counter()
    s1 = run_pipeline(ov)
    t1 = time.perf_counter() - t0
    c = R.client(f"sqlite:///{tmp_path}/mlflow.db")
    assert s1["gate"]["passed"] and R.alias_version(c, "cmet", "champion") == s1["registry"]["version"] == "1"
    stages = sorted(r.data.tags.get("stage", "trial") for r in _runs(tmp_path))
    assert stages == ["final", "pipeline", "trial", "trial"], stages
    final = next(r for r in _runs(tmp_path) if r.data.tags.get("stage") == "final")
    arts = {a.path for a in mlflow.MlflowClient().list_artifacts(final.info.run_id)}
    assert {"model_card.md", "figures", "data_checks", "gate", "config"} <= arts, arts
    figs = {Path(a.path).name for a in mlflow.MlflowClient().list_artifacts(final.info.run_id, "figures")}
    assert {"confusion_matrix.png", "per_emotion_acc.png"} <= figs, figs
    assert final.data.tags.get("mlflow.parentRunId") == s1["parent_run_id"]
    # second run: everything cached, nothing new registered
    t0 = time.perf_counter()
    s2 = run_pipeline(ov)
    t2 = time.perf_counter() - t0
    assert s2["registry"]["version"] == "1" and not s2["registry"]["new"]
    assert s2["train"]["out_dir"] == s1["train"]["out_dir"]
    assert t2 < 0.6 * t1, (t1, t2)
    # a second passing candidate (another seed) -> champion v2, v1 kept for rollback
    s3 = run_pipeline([*ov, "seed=3", "pipeline.tune.enabled=false", "gates.relative.champion_margin=1.0"])
    assert s3["registry"]["after"]["champion"] == "2"
    # a worse one (one training step) judged against the champion's accuracy, with a margin no candidate
    # can meet: registered, refused on that check alone (the champion's metrics read back from the
    # registry on the same evaluation set), champion unchanged
    s4 = run_pipeline(
        [*ov, "train.steps=1", "pipeline.tune.enabled=false", "gates.relative.champion_margin=-1.0"]
    )
    failed = [ch["name"] for ch in s4["gate"]["report"]["checks"] if not ch["passed"]]
    assert failed == ["not_worse_than_champion"], s4["gate"]["summary"]
    assert s4["gate"]["champion_before"] == "2"
    assert s4["gate"]["champion_metrics"]["acc_emo/cmet"] == pytest.approx(
        s3["metrics"]["acc_emo/cmet"], abs=1e-5
    )
    assert not s4["gate"]["passed"] and s4["registry"]["version"] == "3"
    assert R.alias_version(c, "cmet", "champion") == "2"
    assert c.get_model_version("cmet", "3").tags["gate.passed"] == "false"
    assert R.rollback(c, "cmet") == ("2", "1")
    assert R.alias_version(c, "cmet", "champion") == "1"
    # a change of the training code (in the hashed copy) retrains: a new train folder and final run,
    # while the data stage stays cached
    p = code / "cmet" / "train_loop.py"
    p.write_text(p.read_text() + "\n# changed\n")
    s5 = run_pipeline(ov)
    assert s5["train"]["out_dir"] != s1["train"]["out_dir"] and s5["train"]["run_id"] != s1["train"]["run_id"]
    assert s5["features"] == s1["features"]


#: the killed run's length: long enough that the kill lands mid-run on a fast CPU
STEPS = 200


def test_killed_run_resumes_from_checkpoint(tmp_path):
    env = dict(
        os.environ,
        CMET_ROOT=str(tmp_path),
        PREFECT_HOME=str(tmp_path / "prefect"),
        MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path}/mlflow.db",
        BENTOML_HOME=str(tmp_path / "bento"),
    )
    env.pop("PREFECT_API_URL", None)
    args = [
        sys.executable,
        "-m",
        "flows.cli",
        "pipeline",
        "run",
        "experiment=fast",
        "pipeline.tune.enabled=false",
        "pipeline.bento=false",
        "pipeline.sample_video=false",
        f"train.steps={STEPS}",
        "train.eval_every=10",
        "train.checkpoint_every=10",
        f"paths.work_dir={tmp_path}/work",
    ]
    log1 = open(tmp_path / "run1.log", "w")
    p = subprocess.Popen(
        args, cwd=ROOT, env=env, stdout=log1, stderr=subprocess.STDOUT, start_new_session=True
    )
    ckpt = None
    deadline = time.time() + 900
    while time.time() < deadline and p.poll() is None:
        hits = list((tmp_path / "work" / "cache" / "train").glob("*/checkpoints/cmet_last.pt"))
        if hits:
            ckpt = hits[0]
            break
        time.sleep(0.1)
    assert ckpt is not None, (tmp_path / "run1.log").read_text()[-3000:]
    # at once (checkpoints are written atomically): a fast CPU runs the tiny model's steps in ms, and a
    # kill that came late found the run finished (at 60 steps with a 2 s wait: finished on an EPYC host)
    os.killpg(p.pid, signal.SIGKILL)  # the flow and its temporary Prefect server
    p.wait()
    import torch

    step_killed = int(torch.load(ckpt, weights_only=False)["step"])
    assert 10 <= step_killed < STEPS
    out = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1500)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path}/mlflow.db")
    finals = [
        r
        for r in mlflow.search_runs(experiment_names=["cmet"], output_format="list")
        if r.data.tags.get("stage") == "final"
    ]
    resumed = max(finals, key=lambda r: r.info.start_time)
    hist = mlflow.MlflowClient().get_metric_history(resumed.info.run_id, "val/acc_emo")
    steps = sorted({m.step for m in hist})
    # evaluations every 10 steps: the resumed run's first is the one after the checkpoint (a restart
    # from step 0 would log 10, 20, ... again), and it runs to the end
    assert steps == list(range(step_killed + 10, STEPS + 1, 10)), (step_killed, steps)
