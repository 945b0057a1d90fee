"""MLflow helpers of the pipeline: the experiment, artifacts into a run, numeric metrics, and lineage
(git state, the Prefect flow run <-> MLflow run links, datasets as run inputs)."""

from __future__ import annotations

import json
import logging
import math
import os
import subprocess
import warnings
from pathlib import Path

log = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parent.parent


def setup_experiment(cfg) -> str:
    """Point MLflow at the configured store; create the experiment (artifacts in .cmet/) -> its id."""
    import mlflow

    uri = cfg.pipeline.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
    if uri:  # the registry follows the tracking store (no set_registry_uri: it leaks into os.environ)
        mlflow.set_tracking_uri(str(uri))
    exp = mlflow.get_experiment_by_name(str(cfg.pipeline.experiment))
    if exp is None:
        loc = Path(str(cfg.pipeline.artifact_location))
        loc.mkdir(parents=True, exist_ok=True)
        exp_id = mlflow.create_experiment(
            str(cfg.pipeline.experiment), artifact_location=loc.resolve().as_uri()
        )
    else:
        exp_id = exp.experiment_id
    # MLflow 3 opens an experiment without this tag in its GenAI view (traces, evaluations)
    mlflow.MlflowClient().set_experiment_tag(exp_id, "mlflow.experimentKind", "custom_model_development")
    return exp_id


def log_artifacts_to(run_id: str, paths: list[str | Path], artifact_path: str) -> None:
    """Files and folders (those that exist) into ``artifact_path`` of run ``run_id``."""
    from mlflow import MlflowClient

    c = MlflowClient()
    for p in paths:
        if p and Path(p).exists():
            (c.log_artifacts if Path(p).is_dir() else c.log_artifact)(run_id, str(p), artifact_path)


def numeric_metrics(metrics: dict | None) -> dict[str, float]:
    """The finite numeric entries of ``metrics`` under MLflow-safe names (``@`` -> ``_``)."""
    out = {}
    for k, v in (metrics or {}).items():
        try:
            f = float(v)
        except (TypeError, ValueError):
            continue
        if math.isfinite(f):
            out[k.replace("@", "_")] = f
    return out


def git_state() -> dict[str, str]:
    """``{"commit": sha or "unknown", "dirty": "true" | "false" | "unknown"}`` of the project checkout
    (dirty: tracked files differ from the commit)."""
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        st = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return {"commit": "unknown", "dirty": "unknown"}
    return {"commit": sha, "dirty": str(bool(st.strip())).lower()}


def lineage_tags() -> dict[str, str]:
    """MLflow run tags naming the code (git commit, dirty flag) and the Prefect flow run of this run."""
    from prefect.runtime import flow_run

    g = git_state()
    tags = {"mlflow.source.git.commit": g["commit"], "git.commit": g["commit"], "git.dirty": g["dirty"]}
    if flow_run.id:
        tags.update({"prefect.flow_run_id": str(flow_run.id), "prefect.flow_run_name": str(flow_run.name)})
        if str(flow_run.ui_url or "").startswith("http"):  # a server with a UI (not the temporary one)
            tags["prefect.flow_run_url"] = str(flow_run.ui_url)
    return tags


def run_url(ui_url: str, experiment_id: str, run_id: str) -> str:
    """The MLflow UI page of a run, in the model-training view (MLflow 3.17's UI picks GenAI or model
    training per browser, default GenAI; ``workflowType`` in the link selects and remembers it)."""
    return f"{ui_url.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}?workflowType=machine_learning"


def link_prefect_run(run_id: str, experiment_id: str, ui_url: str) -> None:
    """The Prefect side of the link: the current flow run gets the tag ``mlflow-run:<id>`` and a link
    artifact to the MLflow run page."""
    from prefect.artifacts import create_link_artifact
    from prefect.client.orchestration import get_client
    from prefect.runtime import flow_run

    if not flow_run.id:
        return
    link = run_url(ui_url, experiment_id, run_id)
    with get_client(sync_client=True) as client:
        tags = sorted({*flow_run.tags, f"mlflow-run:{run_id}"})
        client.update_flow_run(flow_run.id, tags=tags)
    create_link_artifact(
        link, link_text=f"MLflow run {run_id}", key="mlflow-run", description="the MLflow run"
    )


def log_datasets(fs_dir: str, content_hash: str, source: str) -> None:
    """The FeatureSet's clip table as MLflow dataset inputs of the active run, one per split (contexts
    ``training``, ``validation``, ``evaluation``); digest = the arrays' content hash + split (which
    arrays exactly; lineage, not a cache key), source = the feature folder."""
    import mlflow
    import pandas as pd

    clips = pd.read_parquet(Path(fs_dir) / "clips.parquet")
    for split, context in (("train", "training"), ("val", "validation"), ("test", "evaluation")):
        part = clips[clips["split"] == split]
        if part.empty:
            continue
        with warnings.catch_warnings():  # MLflow registers two local sources; integer-column schema hint
            warnings.filterwarnings("ignore", message="The specified dataset source can be interpreted")
            warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer")
            ds = mlflow.data.from_pandas(
                part.reset_index(drop=True),
                source=Path(fs_dir).resolve().as_uri(),
                name=f"{source}-{split}",
                digest=f"{content_hash}-{split}"[:36],
            )
        mlflow.log_input(ds, context=context, tags={"content_hash": content_hash, "split": split})


def log_history(run_id: str, checkpoint: Path) -> None:
    """The per-step training curves of a finished run (``train/loss``, ``train/recon`` at every
    ``train.log_every`` step, from the history its checkpoint holds) as step-indexed MLflow metrics.
    (``val/*`` are logged while training, by the callback.)"""
    import time

    import torch
    from mlflow import MlflowClient
    from mlflow.entities import Metric

    if not Path(checkpoint).is_file():
        return
    hist = json.loads(torch.load(checkpoint, map_location="cpu", weights_only=True).get("history") or "{}")
    now = int(time.time() * 1000)
    rows = [
        Metric(f"train/{k}", float(v), now, int(step))
        for k in ("loss", "recon")
        for step, v in zip(hist.get("step", []), hist.get(k, []), strict=False)
        if math.isfinite(float(v))
    ]
    c = MlflowClient()
    for i in range(0, len(rows), 1000):  # MLflow's batch limit
        c.log_batch(run_id, metrics=rows[i : i + 1000])


#: the metrics shown in the run tables, the registry tags and the model card (the full set of an
#: evaluation is the run's figures/metrics.json; the baselines' per-emotion table a CSV beside it)
HEADLINE_METRICS = (
    "acc_emo/cmet",
    "acc_emo_ext/cmet",
    "agree_ext/cmet",  # extended edits read by cmet.readout.nearest_basic vs the speech encoder's label
    "agree_ext/speech_direct",
    "acc_emo/speech_direct",
    "acc_emo_gain_lb/speech_direct",  # paired lower bound of C-MET's gain over speech-direct
    "acc_emo/label",
    "acc_emo/reference",
    "lips_kept",
    "identity_median",
    "latency_ms_per_frame",
)


def headline(metrics: dict, gates=None) -> dict[str, float]:
    """The headline metrics (plus every metric a gate reads) of ``metrics``."""
    keys = set(HEADLINE_METRICS)
    if gates is not None:
        keys |= {str(spec.metric) for spec in gates.absolute.values()}
        keys |= {str(gates.relative.metric), str(gates.relative.baseline)}
    return {k: v for k, v in metrics.items() if k in keys}
