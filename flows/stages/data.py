"""Data stage: build or read the dataset, check it (GX suites), extract features in parallel shards."""

from __future__ import annotations

import time
from pathlib import Path

from prefect import get_run_logger
from prefect.cache_policies import NO_CACHE

from flows.caching import cfg_of, features_key, fresh, key_fn, mark_done, stage_task


@stage_task(name="dataset", retries=2, retry_delay_seconds=2, cache_key_fn=key_fn("out_root", "key"))
def dataset(cfg_dict: dict, key: str, out_root: str) -> dict:
    """Build or read the source named in ``cfg.data.source``.

    Sources with a raw stage (``generated``) write a clip table (features come later, in parallel);
    the others (``simulator``, ``release_au``) give a FeatureSet directly.
    """
    logger = get_run_logger()
    cfg = cfg_of(cfg_dict)
    out = Path(out_root) / key
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    if cfg.pipeline.features_dir:
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
    mark_done(out, res)
    logger.info("dataset %s (%s) ready in %.1fs: %s", cfg.data.source, key, time.perf_counter() - t0, out)
    return res


@stage_task(name="validate", cache_policy=NO_CACHE)
def validate(stage: str, source: str, cfg_dict: dict, report_dir: str, parent_run_id: str | None) -> dict:
    """Run the GX suites of ``stage`` (raw | features); keep the report (JSON + HTML) as a file and an
    MLflow artifact of the pipeline run; raise :class:`~data_checks.run.DataCheckError` on failure."""
    import pandas as pd

    from cmet.data.features import FeatureSet
    from data_checks.run import check_features, check_raw
    from data_checks.suites import CheckLimits

    logger = get_run_logger()
    lim = CheckLimits.from_cfg(cfg_of(cfg_dict))
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

        from flows.tracking import log_artifacts_to

        log_artifacts_to(parent_run_id, [rep.json_path, rep.html_path], "data_checks")
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


@stage_task(name="extract-features", retries=2, retry_delay_seconds=2, cache_key_fn=key_fn("out_root", "key"))
def extract_shard(cfg_dict: dict, clip_table: str, shard: int, n_shards: int, key: str, out_root: str) -> str:
    """Speech/visual features of one shard of the clip table (shards run in parallel)."""
    import pandas as pd

    from cmet.audio import extract_features

    table = pd.read_parquet(clip_table)
    part = table.iloc[shard::n_shards].reset_index(drop=True)
    out = Path(out_root) / key
    fs = extract_features(cfg_of(cfg_dict), part)
    fs.save(out / "features")
    mark_done(out)
    return str(out / "features")


@stage_task(name="merge-features", cache_key_fn=key_fn("out_root", "key"))
def merge_shards(shard_dirs: list[str], key: str, out_root: str) -> str:
    """One FeatureSet from the shards' (clip order: shard by shard)."""
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
    mark_done(out)
    return str(out / "features")


def prepare_features(cfg, cd: dict, key: str, report_dir: Path, run_id: str) -> tuple[str, list[dict]]:
    """dataset -> raw checks -> (parallel shards) features -> feature checks.

    Returns the validated FeatureSet folder and the check results (their report files)."""
    cache = Path(str(cfg.paths.cache_dir))
    ds = fresh(dataset, cache / "datasets", key)(cd, key, str(cache / "datasets"))
    checks = []
    if ds["kind"] == "raw":
        checks.append(validate("raw", ds["clip_table"], cd, str(report_dir), run_id))
        n = int(cfg.pipeline.extract_shards)
        fkey, root = features_key(key, n), cache / "features"
        futs = [
            fresh(extract_shard, root, f"{fkey}-{i}").submit(
                cd, ds["clip_table"], i, n, f"{fkey}-{i}", str(root)
            )
            for i in range(n)
        ]
        fs_dir = fresh(merge_shards, root, fkey)([f.result() for f in futs], fkey, str(root))
    else:
        fs_dir = ds["features"]
        checks.append(validate("raw", fs_dir, cd, str(report_dir), run_id))
    checks.append(validate("features", fs_dir, cd, str(report_dir), run_id))
    return fs_dir, checks
