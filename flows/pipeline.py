"""The main Prefect 3 flow: data -> checks -> features -> checks -> tune -> train -> evaluate -> gate
-> registry -> model card -> bento. This module only wires the stages (:mod:`flows.stages`).

Every task is a small function of plain values (paths, dicts) so Prefect can hash its inputs. Cache
keys hash what went in (the data's inputs + config + library code, see :mod:`flows.caching`); results persist in
PREFECT_HOME (inside .cmet/), so a second run with unchanged data and config reuses the work. A task
whose cached output folder vanished (``make clean``) recomputes. Bad data (a
:class:`~cmet.errors.CmetError`) is never retried; I/O and registry steps retry. Training resumes from
the checkpoints of its content-addressed folder after a crash or a kill.

Run it with ``cmet pipeline run [OVERRIDES]`` (``make run``); in code: ``run_pipeline(["experiment=fast"])``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from prefect import flow, get_run_logger
from prefect.runtime import flow_run as prefect_run

from flows.caching import data_key
from flows.notify import notify_failure
from flows.stages.data import prepare_features
from flows.stages.evaluate import evaluate_and_gate
from flows.stages.publish import publish
from flows.stages.train import tune_and_train
from flows.tracking import headline, lineage_tags, link_prefect_run, log_datasets, run_url, setup_experiment


@flow(name="cmet-pipeline", log_prints=True, on_failure=[notify_failure], on_crashed=[notify_failure])
def cmet_pipeline(overrides: list[str] | None = None, cfg_dict: dict | None = None) -> dict:
    """The whole pipeline on ``cfg_dict`` (the composed config), else on the config composed from
    ``overrides`` (a deployment passes only overrides)."""
    import mlflow
    from omegaconf import OmegaConf

    from cmet.config import compose

    t_start = time.perf_counter()
    overrides = list(overrides or [])
    cfg = OmegaConf.create(cfg_dict) if cfg_dict else compose(overrides)
    exp_id = setup_experiment(cfg)
    run_name = f"pipeline-{time.strftime('%Y%m%d-%H%M')}-{prefect_run.name or 'local'}"
    tags = {"stage": "pipeline", **lineage_tags()}
    with mlflow.start_run(run_name=run_name, experiment_id=exp_id, tags=tags) as parent:
        pid = parent.info.run_id
        link_prefect_run(pid, exp_id, str(cfg.pipeline.mlflow_ui_url))
        mlflow.log_params({"overrides": " ".join(overrides) or "(none)", "data.source": str(cfg.data.source)})
        report_dir = Path(str(cfg.paths.runs_dir)) / "data_checks" / pid
        cd = OmegaConf.to_container(cfg, resolve=True)
        # the data's key is its inputs' hash (every later stage's key builds on it); the arrays' own
        # content hash is lineage only (MLflow dataset digests): another CPU computes them to 1e-7
        data_hash = data_key(cfg)
        fs_dir, checks = prepare_features(cfg, cd, data_hash, report_dir, pid)
        meta = json.loads((Path(fs_dir) / "meta.json").read_text())
        content_hash = str(meta.get("content_hash"))
        mlflow.set_tags(
            {
                "data_hash": data_hash,
                "data_content_hash": content_hash,
                "data.n_clips": str(meta.get("n_clips")),
            }
        )
        log_datasets(fs_dir, content_hash, str(cfg.data.source))
        best_cfg, tune_res, train_res = tune_and_train(cfg, fs_dir, data_hash, pid, exp_id)
        eval_res, gate_res, ev_hash = evaluate_and_gate(best_cfg, train_res, fs_dir, data_hash)
        hashes = {"data_hash": data_hash, "eval_hash": ev_hash}
        reg, bento_tag = publish(best_cfg, train_res, eval_res, gate_res, tune_res, fs_dir, hashes, checks)
        mlflow.log_metrics({f"test/{k}": v for k, v in headline(eval_res["metrics"], best_cfg.gates).items()})
        mlflow.log_dict(gate_res["report"], "gate/gate_report.json")
        tags = {"gate.passed": str(gate_res["passed"]).lower(), "model.version": reg["version"]}
        mlflow.set_tags({**tags, "champion": str(reg["after"]["champion"])})
        if bento_tag:
            mlflow.set_tag("bento", bento_tag)
        summary = {
            "overrides": overrides,
            "parent_run_id": pid,
            "data_hash": data_hash,
            "data_content_hash": content_hash,
            "features": fs_dir,
            "tune": tune_res,
            "train": train_res,
            "metrics": eval_res["metrics"],
            "gate": gate_res,
            "registry": reg,
            "bento": bento_tag,
            "seconds": time.perf_counter() - t_start,
            "tracking_uri": mlflow.get_tracking_uri(),
            "run_url": run_url(str(cfg.pipeline.mlflow_ui_url), exp_id, pid),
        }
        mlflow.log_metric("pipeline_seconds", summary["seconds"])
    get_run_logger().info(
        "pipeline finished in %.1fs: champion v%s, gate %s, bento %s",
        summary["seconds"],
        reg["after"]["champion"],
        "passed" if gate_res["passed"] else "FAILED",
        bento_tag,
    )
    return summary


def task_runner(cfg):
    """The Prefect task runner named by ``cfg.pipeline.task_runner`` (thread | process | dask | ray)."""
    from cmet.errors import ConfigError

    kind, n = str(cfg.pipeline.task_runner), int(cfg.pipeline.max_workers)
    if kind == "thread":
        from prefect.task_runners import ThreadPoolTaskRunner

        return ThreadPoolTaskRunner(max_workers=n)
    if kind == "process":
        from prefect.task_runners import ProcessPoolTaskRunner

        return ProcessPoolTaskRunner(max_workers=n)
    addr = cfg.pipeline.task_runner_address
    if kind == "dask":
        try:
            from prefect_dask import DaskTaskRunner
        except ImportError as e:
            raise ConfigError("pipeline.task_runner=dask needs `pip install prefect-dask`") from e
        return (
            DaskTaskRunner(address=addr)
            if addr
            else DaskTaskRunner(cluster_kwargs={"n_workers": n, "processes": False})
        )
    if kind == "ray":
        try:
            from prefect_ray import RayTaskRunner
        except ImportError as e:
            raise ConfigError("pipeline.task_runner=ray needs `pip install prefect-ray`") from e
        return RayTaskRunner(address=addr) if addr else RayTaskRunner()
    raise ConfigError(f"pipeline.task_runner must be thread | process | dask | ray, got {kind!r}")


def run_pipeline(overrides: list[str] | None = None, return_state: bool = False):
    """Compose the config once, pick the task runner from it and run the flow on it."""
    from omegaconf import OmegaConf

    from cmet.config import compose
    from flows.settings import configure_prefect_env

    configure_prefect_env()
    cfg = compose(list(overrides or []))
    f = cmet_pipeline.with_options(task_runner=task_runner(cfg))
    cd = OmegaConf.to_container(cfg, resolve=True)
    return f(overrides=list(overrides or []), cfg_dict=cd, return_state=return_state)
