"""MLflow helpers of the pipeline: the experiment, artifacts into a run, numeric metrics."""

from __future__ import annotations

import math
import os
from pathlib import Path


def setup_experiment(cfg) -> str:
    """Point MLflow at the configured store; create the experiment (artifacts in .cmet/) -> its id."""
    import mlflow

    uri = cfg.pipeline.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        mlflow.set_tracking_uri(str(uri))
        mlflow.set_registry_uri(str(uri))
    exp = mlflow.get_experiment_by_name(str(cfg.pipeline.experiment))
    if exp is None:
        loc = Path(str(cfg.pipeline.artifact_location))
        loc.mkdir(parents=True, exist_ok=True)
        return mlflow.create_experiment(
            str(cfg.pipeline.experiment), artifact_location=loc.resolve().as_uri()
        )
    return exp.experiment_id


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
