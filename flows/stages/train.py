"""Train stage: the Optuna study (one nested MLflow run per trial), then the final training of the best
configuration in a content-addressed folder (resumes from its checkpoints after a crash or a kill)."""

from __future__ import annotations

import time
from pathlib import Path

from prefect import get_run_logger

from cmet.hashing import hash_dir
from flows.caching import cfg_of, fresh, key_fn, mark_done, stage_task, study_name, train_key


@stage_task(name="tune", retries=1, retry_delay_seconds=2, cache_key_fn=key_fn("study_name"))
def tune(cfg_dict: dict, fs_dir: str, study_name: str, parent_run_id: str, experiment_id: str) -> dict:
    """Optuna study (nested MLflow child run per trial, pruning) -> best params."""
    from flows.tune import run_worker

    res = run_worker(cfg_of(cfg_dict), fs_dir, parent_run_id, experiment_id, study_name, worker="pipeline")
    get_run_logger().info(
        "tuning: best %s=%.4f with %s (%d complete, %d pruned, %.1fs)",
        cfg_dict["pipeline"]["tune"]["metric"],
        res["best_value"],
        res["best_params"],
        res["n_complete"],
        res["n_pruned"],
        res["seconds"],
    )
    return res


@stage_task(name="train", retries=1, retry_delay_seconds=2, cache_key_fn=key_fn("out_root", "key"))
def train_final(
    cfg_dict: dict, fs_dir: str, key: str, out_root: str, parent_run_id: str, experiment_id: str
) -> dict:
    """Train the chosen configuration in a content-addressed folder (resumes from its checkpoints)."""
    import mlflow

    from cmet.config import flatten
    from cmet.data.features import FeatureSet
    from cmet.train import train
    from flows.tracking import lineage_tags, log_datasets, log_history, numeric_metrics

    cfg = cfg_of(cfg_dict)
    out = Path(out_root) / key
    out.mkdir(parents=True, exist_ok=True)
    fs = FeatureSet.load(fs_dir)
    with mlflow.start_run(
        run_name=f"train-{cfg.data.source}-{cfg.train.steps}steps-{key[:6]}",
        nested=True,
        parent_run_id=parent_run_id,
        experiment_id=experiment_id,
        tags={"stage": "final", "train_key": key, **lineage_tags()},
    ) as run:
        flat = {k: v for k, v in flatten(cfg).items() if v is not None}
        mlflow.log_params({k: str(v)[:500] for k, v in flat.items()})
        log_datasets(fs_dir, str(fs.meta.get("content_hash")), str(cfg.data.source))

        def callback(step: int, metrics: dict) -> None:
            mlflow.log_metrics(numeric_metrics(metrics), step=int(step))

        t0 = time.perf_counter()
        metrics = train(cfg, features=fs, out_dir=out, callback=callback)
        log_history(run.info.run_id, out / "checkpoints" / "cmet_last.pt")
        mlflow.log_metric("train_seconds", time.perf_counter() - t0, step=int(cfg.train.steps))
        run_id = run.info.run_id
    bundle = out / "bundle"
    res = {
        "out_dir": str(out),
        "bundle": str(bundle),
        "run_id": run_id,
        "bundle_hash": hash_dir(bundle),
        "metrics": numeric_metrics(metrics),
    }
    mark_done(out, res)
    get_run_logger().info("trained %s in %.1fs", bundle, time.perf_counter() - t0)
    return res


def tune_and_train(cfg, fs_dir: str, data_hash: str, run_id: str, exp_id: str) -> tuple:
    """The study (when ``pipeline.tune.enabled``), then the final training of its best configuration.

    Returns ``(best_cfg, tune result or None, train result)``."""
    import mlflow
    from omegaconf import OmegaConf

    from flows.tune import apply_params

    tune_res, best_cfg = None, cfg
    if cfg.pipeline.tune.enabled:
        cd = OmegaConf.to_container(cfg, resolve=True)
        tune_res = tune(cd, fs_dir, study_name(cfg, data_hash), run_id, exp_id)
        best_cfg = apply_params(cfg, tune_res["best_params"])
        mlflow.log_params({f"best.{k}": v for k, v in tune_res["best_params"].items()})
    bcd = OmegaConf.to_container(best_cfg, resolve=True)
    key, root = train_key(best_cfg, data_hash), Path(str(cfg.paths.cache_dir)) / "train"
    train_res = fresh(train_final, root, key)(bcd, fs_dir, key, str(root), run_id, exp_id)
    return best_cfg, tune_res, train_res
