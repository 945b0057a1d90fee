"""The main Prefect 3 flow: data -> checks -> features -> checks -> tune -> train -> evaluate -> gate
-> registry -> bento.

Every task is a small function of plain values (paths, dicts) so Prefect can hash its inputs. Cache
keys are content hashes (data + config + library code, see :mod:`flows.hashing`); results persist in
PREFECT_HOME (inside .cmet/), so a second run with unchanged data and config reuses the work. A task
whose cached output folder vanished (``make clean``) recomputes. Bad data (a
:class:`~cmet.errors.CmetError`) is never retried; I/O and registry steps retry ``pipeline.retries``
times. Training resumes from the checkpoints of its content-addressed folder after a crash or a kill.

Run it with ``cmet pipeline run [OVERRIDES]`` (``make run``); in code: ``run_pipeline(["experiment=fast"])``.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from cmet.errors import CmetError, ModelError
from flows.hashing import hash_cfg, hash_code, hash_dir, hash_obj

log = logging.getLogger(__name__)

DATA_CODE = ("cmet/data", "cmet/audio", "cmet/face/facs.py")
MODEL_CODE = ("cmet/model", "cmet/train.py", "cmet/infer.py", "cmet/data")
EVAL_CODE = ("cmet/evaluate.py", "cmet/model", "cmet/infer.py")


# ------------------------------------------------------------------------------------------ helpers
def _transient(task, task_run, state) -> bool:
    """Prefect retry condition: retry unexpected errors, never bad input (CmetError)."""
    try:
        exc = state.result(raise_on_failure=False)
    except Exception:  # pragma: no cover
        return True
    return not isinstance(exc, CmetError)


def _key_if_exists(path_param: str | None, *key_params: str):
    """cache_key_fn factory: key = hash of the named parameters (content hashes) + the task name.

    Tasks that write a content-addressed folder (``out_root/key``) are called through :func:`_fresh`,
    which forces a refresh when that folder is gone (``make clean``), so a cached result never
    points at deleted files."""

    def fn(context, parameters: dict) -> str | None:
        return hash_obj([parameters.get(k) for k in key_params] + [context.task.name])

    return fn


def _fresh(task_obj, out_root: str | Path, key: str):
    """The task, with ``refresh_cache=True`` when its output folder ``out_root/key`` is incomplete."""
    done = (Path(out_root) / key / "DONE").is_file()
    return task_obj if done else task_obj.with_options(refresh_cache=True)


def _cfg(cfg_dict: dict):
    from omegaconf import OmegaConf

    return OmegaConf.create(cfg_dict)


def _mlflow(cfg) -> str:
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


def _log_artifacts_to(run_id: str, paths: list[str | Path], artifact_path: str) -> None:
    from mlflow import MlflowClient

    c = MlflowClient()
    for p in paths:
        if p and Path(p).exists():
            (c.log_artifacts if Path(p).is_dir() else c.log_artifact)(run_id, str(p), artifact_path)


def _done(folder: Path, info: dict | None = None) -> None:
    (folder / "DONE").write_text(json.dumps(info or {}, default=str))


# --------------------------------------------------------------------------------------------- tasks
def _task(**kw):
    base = dict(persist_result=True, retry_condition_fn=_transient)
    base.update(kw)
    return task(**base)


@_task(name="dataset", retries=2, retry_delay_seconds=2, cache_key_fn=_key_if_exists("out_root", "key"))
def dataset(cfg_dict: dict, key: str, out_root: str) -> dict:
    """Build or read the source named in ``cfg.data.source``.

    Sources with a raw stage (``generated``) write a clip table (features come later, in parallel);
    the others (``simulator``, ``release_au``) give a FeatureSet directly.
    """
    logger = get_run_logger()
    cfg = _cfg(cfg_dict)
    out = Path(out_root) / key
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    if cfg.pipeline.get("features_dir"):
        from cmet.data.features import FeatureSet

        fs = FeatureSet.load(str(cfg.pipeline.features_dir), validate=False)  # the data checks judge it
        fs.save(out / "features")
        res = {"kind": "features", "features": str(out / "features"), "dir": str(out), "n_clips": fs.n_clips}
    elif str(cfg.data.source) == "generated":
        from cmet.data.generated import generate

        table = generate(cfg, out / "raw")
        table.to_parquet(out / "clip_table.parquet", index=False)
        res = {"kind": "raw", "clip_table": str(out / "clip_table.parquet"), "dir": str(out)}
    else:
        from cmet.data import build_feature_set

        fs = build_feature_set(cfg)
        fs.save(out / "features")
        res = {"kind": "features", "features": str(out / "features"), "dir": str(out), "n_clips": fs.n_clips}
    _done(out, res)
    logger.info("dataset %s (%s) ready in %.1fs: %s", cfg.data.source, key, time.perf_counter() - t0, out)
    return res


@_task(name="validate", cache_policy=NO_CACHE)
def validate(stage: str, source: str, cfg_dict: dict, report_dir: str, parent_run_id: str | None) -> dict:
    """Run the GX suites of ``stage`` (raw | features); keep the report (JSON + HTML) as a file and an
    MLflow artifact of the pipeline run; raise :class:`~data_checks.run.DataCheckError` on failure."""
    import pandas as pd

    from cmet.data.features import FeatureSet
    from data_checks.run import check_features, check_raw
    from data_checks.suites import CheckLimits

    logger = get_run_logger()
    cfg = _cfg(cfg_dict)
    lim = CheckLimits.from_cfg(cfg)
    if stage == "raw":
        table = (
            FeatureSet.load(source, validate=False).clips
            if Path(source).is_dir()
            else pd.read_parquet(source)
        )
        rep = check_raw(table, lim)
    else:
        rep = check_features(FeatureSet.load(source, validate=False), lim)
    rep.save(report_dir)
    if parent_run_id:
        import mlflow

        _log_artifacts_to(parent_run_id, [rep.json_path, rep.html_path], "data_checks")
        mlflow.MlflowClient().set_tag(
            parent_run_id, f"data_check.{stage}", "passed" if rep.success else "FAILED"
        )
    (logger.info if rep.success else logger.error)(rep.summary())
    rep.raise_if_failed()
    return {
        "stage": stage,
        "success": True,
        "n_expectations": rep.n_expectations,
        "json": rep.json_path,
        "html": rep.html_path,
        "seconds": rep.seconds,
    }


@_task(
    name="extract-features", retries=2, retry_delay_seconds=2, cache_key_fn=_key_if_exists("out_root", "key")
)
def extract_shard(cfg_dict: dict, clip_table: str, shard: int, n_shards: int, key: str, out_root: str) -> str:
    """Speech/visual features of one shard of the clip table (shards run in parallel)."""
    import pandas as pd

    from cmet.audio import extract_features

    cfg = _cfg(cfg_dict)
    table = pd.read_parquet(clip_table)
    part = table.iloc[shard::n_shards].reset_index(drop=True)
    out = Path(out_root) / key
    fs = extract_features(cfg, part)
    fs.save(out / "features")
    _done(out)
    return str(out / "features")


@_task(name="merge-features", cache_key_fn=_key_if_exists("out_root", "key"))
def merge_shards(shard_dirs: list[str], key: str, out_root: str) -> str:
    import numpy as np
    import pandas as pd

    from cmet.data.features import FeatureSet

    parts = [FeatureSet.load(d, validate=False) for d in shard_dirs]
    clips = pd.concat([p.clips.drop(columns=["frame_start"]) for p in parts], ignore_index=True)

    def cat(k):
        arrs = [getattr(p, k) for p in parts]
        return None if any(a is None for a in arrs) else np.concatenate(arrs)

    fs = FeatureSet(clips, cat("speech"), cat("expr"), cat("lips"), cat("pose"), dict(parts[0].meta))
    out = Path(out_root) / key
    fs.save(out / "features")
    _done(out)
    return str(out / "features")


@_task(name="tune", retries=1, retry_delay_seconds=2, cache_key_fn=_key_if_exists(None, "study_name"))
def tune(cfg_dict: dict, fs_dir: str, study_name: str, parent_run_id: str, experiment_id: str) -> dict:
    """Optuna study (nested MLflow child run per trial, pruning) -> best params."""
    from flows.tune import run_worker

    logger = get_run_logger()
    res = run_worker(_cfg(cfg_dict), fs_dir, parent_run_id, experiment_id, study_name, worker="pipeline")
    logger.info(
        "tuning: best %s=%.4f with %s (%d complete, %d pruned, %.1fs)",
        cfg_dict["pipeline"]["tune"]["metric"],
        res["best_value"],
        res["best_params"],
        res["n_complete"],
        res["n_pruned"],
        res["seconds"],
    )
    return res


@_task(name="train", retries=1, retry_delay_seconds=2, cache_key_fn=_key_if_exists("out_root", "key"))
def train_final(
    cfg_dict: dict, fs_dir: str, key: str, out_root: str, parent_run_id: str, experiment_id: str
) -> dict:
    """Train the chosen configuration in a content-addressed folder (resumes from its checkpoints)."""
    import mlflow

    from cmet.data.features import FeatureSet
    from cmet.train import train
    from flows.tune import _numeric

    logger = get_run_logger()
    cfg = _cfg(cfg_dict)
    out = Path(out_root) / key
    out.mkdir(parents=True, exist_ok=True)
    fs = FeatureSet.load(fs_dir)
    with mlflow.start_run(
        run_name="final",
        nested=True,
        parent_run_id=parent_run_id,
        experiment_id=experiment_id,
        tags={"stage": "final", "train_key": key},
    ) as run:
        from cmet.config import flatten

        flat = {k: v for k, v in flatten(cfg).items() if v is not None}
        mlflow.log_params({k: str(v)[:500] for k, v in flat.items()})

        def callback(step: int, metrics: dict) -> None:
            mlflow.log_metrics(_numeric(metrics), step=int(step))

        t0 = time.perf_counter()
        metrics = train(cfg, features=fs, out_dir=out, callback=callback)
        mlflow.log_metrics(
            {**_numeric(metrics), "train_seconds": time.perf_counter() - t0}, step=int(cfg.train.steps)
        )
        run_id = run.info.run_id
    bundle = out / "bundle"
    res = {
        "out_dir": str(out),
        "bundle": str(bundle),
        "run_id": run_id,
        "bundle_hash": hash_dir(bundle),
        "metrics": _numeric(metrics),
    }
    _done(out, res)
    logger.info("trained %s in %.1fs", bundle, time.perf_counter() - t0)
    return res


def measure_latency(bundle, fs, n_frames: int) -> float:
    """Milliseconds per frame of C-MET inference on one test sequence of ``n_frames`` neutral codes."""
    import numpy as np

    test = fs.split("test") if (fs.clips["split"] == "test").any() else fs
    neu = test.clips.index[test.clips["emotion"] == "neutral"]
    i = int(neu[0]) if len(neu) else 0
    codes = test.frames(i)
    codes = np.resize(codes, (n_frames, codes.shape[1])).astype(np.float32)
    target = next(e for e in bundle.known_emotions if e != "neutral")
    bundle.predict_offsets(codes[:10], target)  # warm-up
    t0 = time.perf_counter()
    bundle.predict_offsets(codes, target)
    return 1000.0 * (time.perf_counter() - t0) / n_frames


def per_emotion_png(
    metrics: dict, path: Path, methods=("cmet", "speech_direct", "label", "reference")
) -> Path | None:
    """The per-emotion Acc_emo table (``acc_emo/<method>/<emotion>``) rendered as an image."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    emos = sorted({k.split("/")[-1] for k in metrics if k.startswith("acc_emo/cmet/")})
    methods = [m for m in methods if any(f"acc_emo/{m}/{e}" in metrics for e in emos)]
    if not emos or not methods:
        return None
    cells = [[f"{metrics.get(f'acc_emo/{m}/{e}', float('nan')):.3f}" for m in methods] for e in emos]
    cells.append([f"{metrics.get(f'acc_emo/{m}', float('nan')):.3f}" for m in methods])
    fig, ax = plt.subplots(figsize=(1.8 + 1.4 * len(methods), 0.45 * (len(emos) + 2)))
    ax.axis("off")
    ax.table(cellText=cells, rowLabels=[*emos, "all"], colLabels=methods, loc="center")
    ax.set_title("Acc_emo per target emotion (test identities)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


@_task(name="evaluate", cache_key_fn=_key_if_exists("out_root", "key"))
def evaluate_bundle(
    cfg_dict: dict, bundle_dir: str, fs_dir: str, key: str, out_root: str, train_metrics: dict | None = None
) -> dict:
    """C-MET and the baselines on the test identities, plus latency -> metrics and figures.

    ``cmet.train.train`` already ends with ``cmet.evaluate.evaluate`` on the same features and config;
    its metrics are reused when present (same evaluation), else the bundle is evaluated here.
    """
    import shutil

    from cmet.data.features import FeatureSet
    from cmet.model.bundle import ModelBundle
    from flows.tune import _numeric

    cfg = _cfg(cfg_dict)
    out = Path(out_root) / key
    out.mkdir(parents=True, exist_ok=True)
    fs = FeatureSet.load(fs_dir)
    bundle = ModelBundle.load(bundle_dir)
    if train_metrics and "acc_emo/cmet" in train_metrics:
        metrics = dict(train_metrics)
        for png in Path(bundle_dir).parent.glob("confusion_matrix*.png"):
            shutil.copy(png, out / png.name)
    else:
        from cmet.evaluate import evaluate

        metrics = dict(evaluate(bundle, fs, cfg, out))
    metrics["latency_ms_per_frame"] = measure_latency(bundle, fs, int(cfg.pipeline.latency_frames))
    metrics.update(sample_video(cfg, bundle_dir, out))
    metrics = _numeric(metrics)
    per_emotion_png(metrics, out / "per_emotion_acc.png")
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    _done(out)
    return {"metrics": metrics, "dir": str(out)}


def _champion_metrics(cfg, name: str, eval_hash: str, fs_dir: str) -> tuple[str | None, dict | None]:
    """The current champion's metrics on *this* evaluation set: from its tags when it was evaluated on
    the same set (same hash), else re-evaluated here from its registered bundle."""
    from flows import registry as R

    c = R.client()
    v = R.alias_version(c, name, R.CHAMPION)
    if v is None:
        return None, None
    mv = c.get_model_version(name, v)
    tags = mv.tags or {}
    if tags.get("eval_hash") == eval_hash:
        return v, {k[len("metric.") :]: float(x) for k, x in tags.items() if k.startswith("metric.")}
    import tempfile

    from cmet.data.features import FeatureSet
    from cmet.evaluate import evaluate
    from cmet.model.bundle import ModelBundle

    with tempfile.TemporaryDirectory(prefix="cmet-champion-") as tmp:
        try:
            bundle = ModelBundle.load(R.fetch_bundle(name, v, Path(tmp) / "bundle", c))
        except ModelError:
            return v, None
        fs = FeatureSet.load(fs_dir)
        m = dict(evaluate(bundle, fs, cfg, Path(tmp) / "eval"))
        m["latency_ms_per_frame"] = measure_latency(bundle, fs, int(cfg.pipeline.latency_frames))
    from flows.tune import _numeric

    return v, _numeric(m)


@_task(name="gate", cache_policy=NO_CACHE)
def gate(cfg_dict: dict, metrics: dict, eval_hash: str, fs_dir: str) -> dict:
    from flows.gates import evaluate_gates

    cfg = _cfg(cfg_dict)
    v, champ = _champion_metrics(cfg, str(cfg.pipeline.registered_model), eval_hash, fs_dir)
    rep = evaluate_gates(metrics, cfg.gates, champ, v)
    (get_run_logger().info if rep.passed else get_run_logger().warning)(rep.summary())
    return {
        "passed": rep.passed,
        "report": rep.to_dict(),
        "tags": rep.tags(),
        "summary": rep.summary(),
        "champion_before": v,
        "champion_metrics": champ,
    }


def model_card(
    cfg, fs_meta: dict, metrics: dict, gate_res: dict, tune_res: dict | None, data_hash: str
) -> str:
    rows = "\n".join(f"| {k} | {v:.4f} |" for k, v in sorted(metrics.items()) if isinstance(v, float))
    return f"""# C-MET connector: model card

**What it does.** Maps a speech emotion difference (target minus neutral speech embeddings) to per-frame
expression-code offsets of a neutral talking face (C-MET, CVPR 2026). Lips and head pose codes are separate
and not edited.

## Data
- source: `{cfg.data.source}` ({fs_meta.get("n_clips", "?")} clips; emotions {fs_meta.get("emotions", "?")};
  extended (held out of training) {fs_meta.get("extended_emotions", [])})
- content hash: `{data_hash}`; identities are split train/val/test (disjoint, checked by data_checks)
- speech encoder: `{cfg.audio.encoder}` ({fs_meta.get("d_speech", "?")}-d); expression code: FACS AU intensities ({fs_meta.get("d_expr", "?")}-d)

## Model and training
- model `{cfg.model.name}`: d_model={cfg.model.d_model}, layers={cfg.model.n_layers}, heads={cfg.model.n_heads}, window={cfg.model.window}
- steps={cfg.train.steps}, lr={cfg.train.lr}, batch={cfg.train.batch_size}, loss={cfg.train.loss.recon}
- tuning: {json.dumps(tune_res.get("best_params")) if tune_res else "off"}

## Figures (test identities)
| metric | value |
|---|---|
{rows}

Gate: {"PASSED" if gate_res["passed"] else "FAILED"}
```
{gate_res["summary"]}
```
Figures: `figures/` (confusion matrix, per-emotion table, curves).

## Limits
- Acc_emo here is measured by a classifier on expression codes, not by a video emotion classifier on
  rendered frames; on the simulator it checks the method, not real-world quality.
- Emotions outside the training set are reached only through the speech embedding (extended emotions).
- Results below k=3 speech clips per semantic vector are unstable (the paper asks k >= 3).
"""


@_task(name="log-final", retries=2, retry_delay_seconds=2, cache_key_fn=_key_if_exists(None, "key"))
def log_final(
    cfg_dict: dict,
    key: str,
    train_res: dict,
    eval_res: dict,
    gate_res: dict,
    tune_res: dict | None,
    fs_dir: str,
    data_hash: str,
    check_files: list[str],
) -> dict:
    """Everything of the final run into its MLflow run: config, metrics, figures, data checks, model
    (pyfunc + signature, the bundle as artifacts), model card, an edited sample video when media exist."""
    import mlflow

    from cmet.config import flatten

    logger = get_run_logger()
    cfg = _cfg(cfg_dict)
    run_id = train_res["run_id"]
    meta = json.loads((Path(fs_dir) / "meta.json").read_text())
    with mlflow.start_run(run_id=run_id, nested=True):
        mlflow.log_dict({k: v for k, v in flatten(cfg).items()}, "config/flat_config.json")
        mlflow.log_metrics({f"test/{k}": v for k, v in eval_res["metrics"].items()})
        figs = [
            p
            for p in Path(eval_res["dir"]).rglob("*")
            if p.suffix in (".png", ".jpg", ".svg", ".csv", ".json")
        ]
        figs += [p for p in Path(train_res["out_dir"]).glob("*") if p.suffix in (".png", ".json")]
        for p in figs:
            mlflow.log_artifact(str(p), "figures")
        for p in check_files:
            if p and Path(p).exists():
                mlflow.log_artifact(p, "data_checks")
        mlflow.log_dict(gate_res["report"], "gate/gate_report.json")
        mlflow.log_text(
            model_card(cfg, meta, eval_res["metrics"], gate_res, tune_res, data_hash), "model_card.md"
        )
        video = Path(eval_res["dir"]) / "sample_happy.mp4"
        if video.is_file():
            mlflow.log_artifact(str(video), "sample")
        if cfg.pipeline.log_model:
            from flows.pyfunc_model import CmetPyfunc, signature

            info = mlflow.pyfunc.log_model(
                name="model",
                python_model=CmetPyfunc(),
                artifacts={"bundle": train_res["bundle"]},
                signature=signature(int(meta["d_expr"])),
                pip_requirements=["cmet-ops"],
            )
            model_uri = info.model_uri
        else:
            mlflow.log_artifacts(train_res["bundle"], "bundle")
            model_uri = f"runs:/{run_id}/bundle"
    logger.info("final run %s logged (model %s)", run_id, model_uri)
    return {"model_uri": model_uri, "run_id": run_id}


def sample_video(cfg, bundle_dir: str, out_dir: Path) -> dict:
    """A short edited sample of the real MEAD video when media exist (``cmet.edit.edit_video``) and
    ``lips_kept``: the correlation of mouth opening, input vs edited output (landmarks re-tracked on
    the output, ``cmet.edit.check_edit``). Returns ``{}`` where media or the face stack are absent."""
    release = Path(str(cfg.paths.release_dir))
    video = release / "asset" / "video" / "W009_038.mp4"
    if not cfg.pipeline.sample_video or not video.is_file():
        return {}
    try:
        from cmet.edit import check_edit, edit_video
    except ImportError as e:
        log.warning("sample video skipped: %s", e)
        return {}
    out = out_dir / "sample_happy.mp4"
    try:
        res = edit_video(
            str(video), emotion="happy", bundle=bundle_dir, out=str(out), cfg=cfg, max_seconds=2.0
        )
        chk = check_edit(str(video), res)
    except CmetError as e:
        log.warning("sample video skipped: %s", e)
        return {}
    return {"lips_kept": float(chk["mouth_corr"])}


@_task(name="register", retries=2, retry_delay_seconds=2, cache_policy=NO_CACHE)
def register(
    cfg_dict: dict,
    model_uri: str,
    run_id: str,
    train_res: dict,
    eval_res: dict,
    gate_res: dict,
    data_hash: str,
    eval_hash: str,
) -> dict:
    """Register the candidate with its gate report (tags); move aliases only if the gate passed."""
    from flows import registry as R

    cfg = _cfg(cfg_dict)
    name = str(cfg.pipeline.registered_model)
    c = R.client()
    tags = {
        **gate_res["tags"],
        **{f"metric.{k}": f"{v:.6g}" for k, v in eval_res["metrics"].items()},
        "data_hash": data_hash,
        "eval_hash": eval_hash,
        "bundle_hash": train_res["bundle_hash"],
        "gate.report": f"runs:/{run_id}/gate/gate_report.json",
        "train.steps": str(cfg.train.steps),
    }
    version, new = R.register_candidate(c, name, model_uri, run_id, tags, dedupe_key=train_res["bundle_hash"])
    moved = R.apply_gate(
        c, name, version, gate_res["passed"], mode=str(cfg.pipeline.get("promotion", "auto"))
    )
    get_run_logger().info(
        "registered %s v%s (%s); %s", name, version, "new" if new else "existing", moved["action"]
    )
    return {"name": name, "version": version, "new": new, **moved}


@_task(name="bento", retries=1, retry_delay_seconds=2, cache_key_fn=_key_if_exists(None, "key"))
def package(cfg_dict: dict, model_uri: str, key: str) -> str | None:
    """serving.build.build_bento(model uri, cfg) -> bento tag; skipped (warning) if serving is absent."""
    logger = get_run_logger()
    try:
        from serving.build import build_bento
    except ImportError as e:
        logger.warning("bento step skipped: serving.build not available (%s)", e)
        return None
    tag = build_bento(model_uri, _cfg(cfg_dict))
    logger.info("bento built: %s", tag)
    return str(tag)


# ---------------------------------------------------------------------------------------------- flow
@flow(name="cmet-pipeline", log_prints=True)
def cmet_pipeline(overrides: list[str] | None = None) -> dict:
    """The whole pipeline on the config composed from ``overrides`` (Hydra compose API)."""
    import mlflow
    from omegaconf import OmegaConf

    from cmet.config import compose

    logger = get_run_logger()
    t_start = time.perf_counter()
    cfg = compose(list(overrides or []))
    cd = OmegaConf.to_container(cfg, resolve=True)
    p = cfg.pipeline
    cache = Path(str(cfg.paths.cache_dir))
    exp_id = _mlflow(cfg)
    summary: dict = {"overrides": list(overrides or [])}
    src = p.get("features_dir")
    data_key = hash_obj(
        [hash_cfg(cfg, "data", "audio", "seed"), hash_code(*DATA_CODE), hash_dir(src) if src else None]
    )
    run_name = f"pipeline-{time.strftime('%Y%m%d-%H%M%S')}"
    with mlflow.start_run(run_name=run_name, experiment_id=exp_id, tags={"stage": "pipeline"}) as parent:
        pid = parent.info.run_id
        summary["parent_run_id"] = pid
        mlflow.log_params(
            {"overrides": " ".join(overrides or []) or "(none)", "data.source": str(cfg.data.source)}
        )
        report_dir = Path(str(cfg.paths.runs_dir)) / "data_checks" / pid
        checks = []
        # 1. dataset -> raw checks -> (parallel) features -> feature checks
        ds = _fresh(dataset, cache / "datasets", data_key)(cd, data_key, str(cache / "datasets"))
        if ds["kind"] == "raw":
            checks.append(validate("raw", ds["clip_table"], cd, str(report_dir), pid))
            n = int(p.extract_shards)
            fkey = hash_obj([data_key, hash_code("cmet/audio"), n])
            futs = [
                _fresh(extract_shard, cache / "features", f"{fkey}-{i}").submit(
                    cd, ds["clip_table"], i, n, f"{fkey}-{i}", str(cache / "features")
                )
                for i in range(n)
            ]
            fs_dir = _fresh(merge_shards, cache / "features", fkey)(
                [f.result() for f in futs], fkey, str(cache / "features")
            )
        else:
            fs_dir = ds["features"]
            checks.append(validate("raw", fs_dir, cd, str(report_dir), pid))
        checks.append(validate("features", fs_dir, cd, str(report_dir), pid))
        meta = json.loads((Path(fs_dir) / "meta.json").read_text())
        data_hash = str(meta.get("content_hash"))
        mlflow.set_tags({"data_hash": data_hash, "data.n_clips": str(meta.get("n_clips"))})
        # 2. tune -> train the best configuration
        model_key = hash_cfg(cfg, "model", "train", "seed")
        tune_res = None
        best_cfg = cfg
        if p.tune.enabled:
            study = (
                p.tune.study_name
                or f"cmet-{data_hash}-{hash_obj([model_key, hash_cfg(cfg, 'pipeline'), hash_code(*MODEL_CODE)], 10)}"
            )
            tune_res = tune(cd, fs_dir, str(study), pid, exp_id)
            from flows.tune import apply_params

            best_cfg = apply_params(cfg, tune_res["best_params"])
            mlflow.log_params({f"best.{k}": v for k, v in tune_res["best_params"].items()})
        bcd = OmegaConf.to_container(best_cfg, resolve=True)
        train_key = hash_obj(
            [data_hash, hash_cfg(best_cfg, "model", "train", "seed", "device"), hash_code(*MODEL_CODE)]
        )
        train_res = _fresh(train_final, cache / "train", train_key)(
            bcd, fs_dir, train_key, str(cache / "train"), pid, exp_id
        )
        # 3. evaluate -> gate -> log -> register -> bento
        eval_hash = hash_obj([data_hash, hash_cfg(best_cfg, "eval"), hash_code(*EVAL_CODE)])
        eval_key = hash_obj([eval_hash, train_res["bundle_hash"]])
        eval_res = _fresh(evaluate_bundle, cache / "eval", eval_key)(
            bcd, train_res["bundle"], fs_dir, eval_key, str(cache / "eval"), train_res["metrics"]
        )
        gate_res = gate(bcd, eval_res["metrics"], eval_hash, fs_dir)
        logged = log_final(
            bcd,
            hash_obj([train_res["run_id"], train_res["bundle_hash"], eval_hash]),
            train_res,
            eval_res,
            gate_res,
            tune_res,
            fs_dir,
            data_hash,
            [x.get("json") for x in checks] + [x.get("html") for x in checks],
        )
        reg = register(
            bcd, logged["model_uri"], logged["run_id"], train_res, eval_res, gate_res, data_hash, eval_hash
        )
        mlflow.log_metrics({f"test/{k}": v for k, v in eval_res["metrics"].items()})
        mlflow.log_dict(gate_res["report"], "gate/gate_report.json")
        mlflow.set_tags(
            {
                "gate.passed": str(gate_res["passed"]).lower(),
                "model.version": reg["version"],
                "champion": str(reg["after"]["champion"]),
            }
        )
        bento_tag = None
        champ = reg["after"]["champion"]
        if p.bento and champ is not None:
            from flows import registry as R

            champ_hash = R.client().get_model_version(reg["name"], champ).tags.get("bundle_hash", champ)
            bento_tag = package(
                bcd, f"models:/{reg['name']}/{champ}", hash_obj([champ, champ_hash, hash_cfg(cfg, "serving")])
            )
        if bento_tag:
            mlflow.set_tag("bento", bento_tag)
        summary.update(
            data_hash=data_hash,
            features=fs_dir,
            tune=tune_res,
            train=train_res,
            metrics=eval_res["metrics"],
            gate=gate_res,
            registry=reg,
            bento=bento_tag,
            seconds=time.perf_counter() - t_start,
            tracking_uri=mlflow.get_tracking_uri(),
        )
        mlflow.log_metric("pipeline_seconds", summary["seconds"])
    logger.info(
        "pipeline finished in %.1fs: champion v%s, gate %s, bento %s",
        summary["seconds"],
        champ,
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
    """Compose the config, pick the task runner from it and run the flow."""
    from cmet.config import compose
    from flows.settings import configure_prefect_env

    configure_prefect_env()
    cfg = compose(list(overrides or []))
    f = cmet_pipeline.with_options(task_runner=task_runner(cfg))
    return f(overrides=list(overrides or []), return_state=return_state)
