"""Optuna tuning with one nested MLflow child run per trial (opened here, not by a callback).

The study lives in ``cfg.pipeline.tune.storage`` (SQLite in .cmet/ by default, any SQLAlchemy URL,
e.g. ``postgresql://user@127.0.0.1:5432/optuna``). Several workers (processes, machines) share one
study by running :func:`run_worker` with the same storage and study name: ``cmet pipeline tune-worker``.
The trial budget ``n_trials`` counts finished (complete + pruned) trials of all workers together.
"""

from __future__ import annotations

import copy
import logging
import time
from pathlib import Path

from omegaconf import OmegaConf

from cmet.errors import ConfigError

log = logging.getLogger(__name__)


def storage_url(cfg) -> str:
    url = str(cfg.pipeline.tune.storage)
    if url.startswith("sqlite:///"):
        Path(url[len("sqlite:///") :]).parent.mkdir(parents=True, exist_ok=True)
    return url


def make_storage(url: str):
    import optuna

    kw = {"pool_pre_ping": True} if not url.startswith("sqlite") else {"connect_args": {"timeout": 60}}
    return optuna.storages.RDBStorage(url, engine_kwargs=kw)


def make_pruner(spec):
    import optuna

    spec = dict(spec or {})
    kind = spec.pop("kind", "median")
    if kind == "median":
        return optuna.pruners.MedianPruner(**spec)
    if kind == "none":
        return optuna.pruners.NopPruner()
    if kind == "halving":
        return optuna.pruners.SuccessiveHalvingPruner(**spec)
    if kind == "threshold":  # a floor (lower) or ceiling (upper) on the reported metric
        return optuna.pruners.ThresholdPruner(**spec)
    raise ConfigError(f"pipeline.tune.pruner.kind must be median | halving | threshold | none, got {kind!r}")


def worker_seed(cfg, worker: str) -> int:
    """The sampler seed of one worker: ``cfg.seed`` for the pipeline's own worker (so ``make run``
    samples the same trials on every machine and every run), offset by the worker's name for the
    others (workers sharing a study must not all propose the same points)."""
    import zlib

    return int(cfg.seed) + (0 if worker == "pipeline" else zlib.crc32(worker.encode()) % 100_003)


def open_study(cfg, study_name: str, attempts: int = 5, seed: int | None = None):
    """Create or load the shared study (its TPE sampler seeded with ``seed``). Workers starting
    together race on the schema / study row; the loser retries (create_study(load_if_exists=True) is
    then a plain load)."""
    import optuna
    from sqlalchemy.exc import DBAPIError, IntegrityError

    tcfg = cfg.pipeline.tune
    for i in range(attempts):
        try:
            return optuna.create_study(
                study_name=study_name,
                storage=make_storage(storage_url(cfg)),
                direction=str(tcfg.direction),
                load_if_exists=True,
                sampler=optuna.samplers.TPESampler(seed=seed),
                pruner=make_pruner(OmegaConf.to_container(tcfg.pruner, resolve=True)),
            )
        except (IntegrityError, DBAPIError, optuna.exceptions.DuplicatedStudyError):
            if i == attempts - 1:
                raise
            time.sleep(1.0 + i)
    raise AssertionError("unreachable")


def suggest(trial, space: dict) -> dict:
    """Sample each dotted config key of ``space`` ({type: float|int|categorical, ...})."""
    out = {}
    for key, spec in space.items():
        t = spec.get("type", "float")
        if t == "float":
            out[key] = trial.suggest_float(
                key, float(spec["low"]), float(spec["high"]), log=bool(spec.get("log", False))
            )
        elif t == "int":
            out[key] = trial.suggest_int(
                key, int(spec["low"]), int(spec["high"]), log=bool(spec.get("log", False))
            )
        elif t == "categorical":
            out[key] = trial.suggest_categorical(key, list(spec["choices"]))
        else:
            raise ConfigError(f"pipeline.tune.space.{key}: unknown type {t!r} (float | int | categorical)")
    return out


def apply_params(cfg, params: dict, **extra):
    """A copy of ``cfg`` with dotted keys set (``{"train.lr": 1e-3}``)."""
    c = copy.deepcopy(cfg)
    OmegaConf.set_struct(c, False)
    for k, v in {**params, **extra}.items():
        OmegaConf.update(c, k, v, merge=False)
    return c


def _objective(cfg, fs, study_name: str, worker: str, parent_run_id, experiment_id, out_root: Path):
    """The Optuna objective: one short training per trial inside its nested MLflow run.

    Validation metrics are logged at their step; a pruned trial ends its run as FINISHED with the tag
    ``optuna.state=PRUNED`` (it stopped early by decision, it did not fail)."""
    import mlflow
    import optuna

    from cmet.train import train
    from flows.tracking import numeric_metrics

    tcfg = cfg.pipeline.tune
    metric, steps = str(tcfg.metric), int(tcfg.steps)
    space = OmegaConf.to_container(tcfg.space, resolve=True)
    # a trial needs the C-MET connector's validation score only: no speech-direct baseline here
    baselines = [b for b in cfg.eval.baselines if b != "speech_direct"]
    fixed = {
        "train.steps": steps,
        "train.resume": False,
        "eval.baselines": baselines,
        "train.eval_every": max(1, steps // int(tcfg.reports)),
    }

    def objective(trial: optuna.Trial) -> float:
        params = suggest(trial, space)
        trial.set_user_attr("worker", worker)
        tags = {
            "optuna.study": study_name,
            "optuna.trial": str(trial.number),
            "worker": worker,
            "stage": "trial",
        }
        with mlflow.start_run(
            run_name=f"trial-{trial.number}",
            nested=True,
            parent_run_id=parent_run_id,
            experiment_id=experiment_id,
            tags=tags,
        ) as run:
            mlflow.log_params(params)
            last: dict = {"value": None, "step": 0}

            def callback(step: int, metrics: dict) -> None:
                mlflow.log_metrics(numeric_metrics(metrics), step=int(step))
                last["step"] = int(step)
                v = metrics.get(metric)
                if v is None:
                    return
                last["value"] = float(v)
                trial.report(float(v), int(step))
                if trial.should_prune():
                    raise optuna.TrialPruned(f"pruned at step {step} ({metric}={float(v):.4f})")

            t0 = time.perf_counter()
            c = apply_params(cfg, params, **fixed)
            try:
                m = train(c, features=fs, out_dir=out_root / f"trial_{trial.number:03d}", callback=callback)
            except optuna.TrialPruned as e:  # the run ends FINISHED (not FAILED), marked pruned
                mlflow.set_tags({"optuna.state": "PRUNED", "mlflow.runName": f"trial-{trial.number}-pruned"})
                mlflow.log_metric("trial_seconds", time.perf_counter() - t0, step=last["step"])
                pruned = e
            else:
                pruned = None
                value = m.get(metric, last["value"])
                if value is None:
                    raise ConfigError(
                        f"training returned no {metric!r} (pipeline.tune.metric); got {sorted(m)}"
                    )
                secs = time.perf_counter() - t0
                mlflow.log_metrics({"objective": float(value), "trial_seconds": secs}, step=steps)
                mlflow.set_tag("optuna.state", "COMPLETE")
            trial.set_user_attr("mlflow_run_id", run.info.run_id)
        if pruned is not None:
            raise pruned
        return float(value)

    return objective


def run_worker(
    cfg,
    fs_dir: str,
    parent_run_id: str | None,
    experiment_id: str | None,
    study_name: str,
    worker: str = "w0",
    out_root: str | Path | None = None,
) -> dict:
    """Run trials on the shared study until it holds ``n_trials`` finished ones. Returns a summary."""
    import optuna

    from cmet.data.features import FeatureSet

    tcfg = cfg.pipeline.tune
    fs = FeatureSet.load(fs_dir)
    out_root = Path(out_root or Path(str(cfg.paths.runs_dir)) / "trials" / study_name)
    study = open_study(cfg, study_name, seed=worker_seed(cfg, worker))
    finished = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    n_trials = int(tcfg.n_trials)
    t0 = time.perf_counter()
    done = sum(t.state in finished for t in study.get_trials(deepcopy=False))
    if done < n_trials:
        study.optimize(
            _objective(cfg, fs, study_name, worker, parent_run_id, experiment_id, out_root),
            n_trials=n_trials - done,
            timeout=tcfg.timeout_s,
            gc_after_trial=False,
            callbacks=[optuna.study.MaxTrialsCallback(n_trials, states=finished)],
            catch=(),
        )
    trials = study.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not complete:
        raise ConfigError(
            f"study {study_name!r}: no trial completed (all pruned or failed); raise pipeline.tune.steps"
        )
    best = study.best_trial
    return {
        "study": study_name,
        "best_params": dict(best.params),
        "best_value": float(best.value),
        "best_trial": int(best.number),
        "n_complete": len(complete),
        "n_pruned": sum(t.state == optuna.trial.TrialState.PRUNED for t in trials),
        "n_this_worker": sum(t.user_attrs.get("worker") == worker for t in trials),
        "seconds": time.perf_counter() - t0,
    }
