"""Publish stage: log the final run (config, metrics, figures, model), register the candidate with its
gate report, write the model card, build the bento of the champion."""

from __future__ import annotations

import json
import string
import time
from pathlib import Path

from prefect import get_run_logger
from prefect.cache_policies import NO_CACHE

from flows.caching import cfg_of, key_fn, stage_task
from flows.tracking import HEADLINE_METRICS, headline

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"


def model_card(cfg, fs_meta: dict, metrics: dict, gate_res: dict, tune_res: dict | None, info: dict) -> str:
    """The model card (``flows/templates/model_card.md``) of one registered version.

    ``info``: data_hash, version, run_id, commit, dirty."""
    rows = "\n".join(
        f"| {k} | {metrics[k]:.4f} |" for k in HEADLINE_METRICS if isinstance(metrics.get(k), float)
    )
    m, t = cfg.model, cfg.train
    from cmet.audio.spec import EncoderSpec

    enc = fs_meta.get("speech_encoder")
    values = {
        "registered_model": cfg.pipeline.registered_model,
        "version": info.get("version", "?"),
        "run_id": info.get("run_id", "?"),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "commit": info.get("commit", "unknown"),
        "dirty": " (with uncommitted changes)" if info.get("dirty") == "true" else "",
        "gate_status": "PASSED" if gate_res["passed"] else "FAILED (registered, not promoted)",
        "gate_summary": gate_res["summary"],
        "data_source": cfg.data.source,
        "data_hash": info.get("data_hash", "?"),
        "n_clips": fs_meta.get("n_clips", "?"),
        "emotions": ", ".join(fs_meta.get("emotions", [])) or "?",
        "extended": ", ".join(fs_meta.get("extended_emotions", [])) or "none",
        "speech_encoder": EncoderSpec.from_dict(enc, "the FeatureSet").name,
        "d_speech": fs_meta.get("d_speech", "?"),
        "d_expr": fs_meta.get("d_expr", "?"),
        "model_name": m.name,
        "model_shape": f"d_model={m.d_model}, layers={m.n_layers}, heads={m.n_heads}, window={m.window}",
        "train_shape": f"steps={t.steps}, lr={t.lr}, batch={t.batch_size}, loss={t.loss.recon}",
        "tuning": json.dumps(tune_res.get("best_params")) if tune_res else "off",
        "metrics_rows": rows,
    }
    return string.Template((TEMPLATES / "model_card.md").read_text()).substitute(values)


@stage_task(name="log-final", retries=2, retry_delay_seconds=2, cache_key_fn=key_fn("key"))
def log_final(
    cfg_dict: dict,
    key: str,
    train_res: dict,
    eval_res: dict,
    gate_res: dict,
    fs_dir: str,
    check_files: list[str],
) -> dict:
    """Everything of the final run into its MLflow run: config, metrics, figures, data checks, model
    (pyfunc + signature, the bundle as artifacts), an edited sample video when media exist."""
    import mlflow

    from cmet.config import flatten

    cfg = cfg_of(cfg_dict)
    run_id = train_res["run_id"]
    meta = json.loads((Path(fs_dir) / "meta.json").read_text())
    with mlflow.start_run(run_id=run_id, nested=True):
        mlflow.log_dict(dict(flatten(cfg).items()), "config/flat_config.json")
        top = headline(eval_res["metrics"], cfg.gates)
        mlflow.log_metrics({f"test/{k}": v for k, v in top.items()}, step=int(cfg.train.steps))
        mlflow.log_table(metrics_table(eval_res["metrics"]), "evaluation/all_metrics.json")
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
        for name in (
            "sample_happy.mp4",
            "sample_timeline.mp4",
            "timeline.json",
            "timeline_strip.png",
            "timeline_codes.png",
        ):
            if (Path(eval_res["dir"]) / name).is_file():
                mlflow.log_artifact(str(Path(eval_res["dir"]) / name), "sample")
        if cfg.pipeline.log_model:
            from flows.pyfunc_model import log_pyfunc

            info = log_pyfunc(train_res["bundle"], int(meta["d_expr"]), input_example(fs_dir))
            model_uri, model_id = info.model_uri, info.model_id
        else:
            mlflow.log_artifacts(train_res["bundle"], "bundle")
            model_uri, model_id = f"runs:/{run_id}/bundle", None
    get_run_logger().info("final run %s logged (model %s)", run_id, model_uri)
    return {"model_uri": model_uri, "run_id": run_id, "model_id": model_id}


def input_example(fs_dir: str, n_frames: int = 5):
    """The first frames of a neutral test clip as the model's input example (neutral codes)."""
    import numpy as np
    import pandas as pd

    from cmet.data.features import FeatureSet

    fs = FeatureSet.load(fs_dir, validate=False)
    clips = fs.clips
    pick = clips.index[(clips["emotion"] == "neutral") & (clips["split"] == "test")]
    codes = np.asarray(fs.frames(int(pick[0]) if len(pick) else 0)[:n_frames], np.float32)
    return pd.DataFrame(codes, columns=[f"expr_{i}" for i in range(codes.shape[1])])


def metrics_table(metrics: dict):
    """Every metric of an evaluation as rows (metric, method, emotion, value): the baselines and the
    per-emotion figures as one table artifact instead of a hundred run metrics."""
    import pandas as pd

    rows = []
    for k, v in sorted(metrics.items()):
        parts = k.split("/")
        rows.append(
            {
                "metric": parts[0],
                "method": parts[1] if len(parts) > 1 else "",
                "emotion": "/".join(parts[2:]) or "all",
                "value": float(v),
            }
        )
    return pd.DataFrame(rows)


@stage_task(name="register", retries=2, retry_delay_seconds=2, cache_policy=NO_CACHE)
def register(
    cfg_dict: dict,
    model_uri: str,
    run_id: str,
    train_res: dict,
    eval_res: dict,
    gate_res: dict,
    data_hash: str,
    eval_hash: str,
    model_id: str | None = None,
) -> dict:
    """Register the candidate with its gate report (tags); move aliases only if the gate passed."""
    from flows import registry as R

    cfg = cfg_of(cfg_dict)
    name = str(cfg.pipeline.registered_model)
    c = R.client(cfg.pipeline.tracking_uri or None)
    tags = {
        **gate_res["tags"],
        **{f"metric.{k}": f"{v:.6g}" for k, v in headline(eval_res["metrics"], cfg.gates).items()},
        "data_hash": data_hash,
        "eval_hash": eval_hash,
        "bundle_hash": train_res["bundle_hash"],
        "gate.report": f"runs:/{run_id}/gate/gate_report.json",
        "train.steps": str(cfg.train.steps),
    }
    version, new = R.register_candidate(
        c, name, model_uri, run_id, tags, dedupe_key=train_res["bundle_hash"], model_id=model_id
    )
    run_name = c.get_run(run_id).info.run_name
    if not run_name.startswith(f"{name}-v"):  # the final run is named after the version it registered
        c.set_tag(run_id, "mlflow.runName", f"{name}-v{version}-{run_name}")
    c.set_tag(run_id, "registered_model", f"{name}/{version}")
    moved = R.apply_gate(c, name, version, gate_res["passed"], mode=str(cfg.pipeline.promotion))
    get_run_logger().info(
        "registered %s v%s (%s); %s", name, version, "new" if new else "existing", moved["action"]
    )
    return {"name": name, "version": version, "new": new, **moved}


@stage_task(name="model-card", retries=2, retry_delay_seconds=2, cache_policy=NO_CACHE)
def log_model_card(
    cfg_dict: dict, fs_dir: str, run_id: str, metrics: dict, gate_res: dict, tune_res: dict | None, info: dict
) -> str:
    """The model card of the registered version, as ``model_card.md`` of its run."""
    from mlflow import MlflowClient

    meta = json.loads((Path(fs_dir) / "meta.json").read_text())
    text = model_card(cfg_of(cfg_dict), meta, metrics, gate_res, tune_res, {**info, "run_id": run_id})
    MlflowClient().log_text(run_id, text, "model_card.md")
    return text


@stage_task(name="bento", retries=1, retry_delay_seconds=2, cache_key_fn=key_fn("key"))
def package(cfg_dict: dict, model_uri: str, key: str) -> str:
    """serving.build.build_bento(model uri, cfg) -> bento tag."""
    from serving.build import build_bento

    tag = build_bento(model_uri, cfg_of(cfg_dict))
    get_run_logger().info("bento built: %s", tag)
    return str(tag)


def publish(
    cfg, train_res: dict, eval_res: dict, gate_res: dict, tune_res, fs_dir: str, hashes: dict, checks
) -> tuple:
    """log-final -> register -> model card -> bento of the champion (when ``pipeline.bento``).

    ``hashes``: data_hash, eval_hash. Returns ``(registry result, bento tag or None)``."""
    from omegaconf import OmegaConf

    from cmet.hashing import hash_cfg, hash_obj
    from flows import registry as R

    cd = OmegaConf.to_container(cfg, resolve=True)
    files = [x.get(k) for x in checks for k in ("json", "html")]
    key = hash_obj([train_res["run_id"], train_res["bundle_hash"], hashes["eval_hash"]])
    logged = log_final(cd, key, train_res, eval_res, gate_res, fs_dir, files)
    reg = register(
        cd,
        logged["model_uri"],
        logged["run_id"],
        train_res,
        eval_res,
        gate_res,
        hashes["data_hash"],
        hashes["eval_hash"],
        logged.get("model_id"),
    )
    from flows.tracking import git_state

    info = {"version": reg["version"], "data_hash": hashes["data_hash"], **git_state()}
    log_model_card(cd, fs_dir, logged["run_id"], eval_res["metrics"], gate_res, tune_res, info)
    champ = reg["after"]["champion"]
    if not cfg.pipeline.bento or champ is None:
        return reg, None
    champ_hash = (
        R.client(cfg.pipeline.tracking_uri or None)
        .get_model_version(reg["name"], champ)
        .tags.get("bundle_hash", champ)
    )
    key = hash_obj([champ, champ_hash, hash_cfg(cfg, "serving")])
    return reg, package(cd, f"models:/{reg['name']}/{champ}", key)
