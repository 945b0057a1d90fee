"""``cmet edit-batch`` on a 2-worker Dask LocalCluster, and the pipeline on ``task_runner=dask``.

* the manifest is checked before any cluster starts (missing column, bad intensity, duplicate out);
* a batch of small synthetic talking-face clips with one corrupt row: the good rows are edited (real
  mp4s with every frame), the bad one is reported with its error, the batch goes on; run again,
  the finished rows are skipped and only the failed one is retried (slow: a cluster and a Prefect
  server);
* the whole pipeline on ``pipeline.task_runner=dask`` (slow).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cmet.errors import DataError


def _manifest(d: Path, rows: list[str]) -> Path:
    p = d / "m.csv"
    p.write_text("\n".join(["video,target,intensity,out", *rows]) + "\n")
    return p


def test_manifest_errors_name_the_row(tmp_path):
    from flows.batch import read_manifest

    with pytest.raises(DataError, match="does not exist"):
        read_manifest(tmp_path / "none.csv")
    (tmp_path / "m.csv").write_text("video,target,out\na.mp4,happy,o.mp4\n")
    with pytest.raises(DataError, match=r"missing column\(s\) \['intensity'\]"):
        read_manifest(tmp_path / "m.csv")
    with pytest.raises(DataError, match="row 3: intensity 'x'"):
        read_manifest(_manifest(tmp_path, ["a.mp4,happy,1,o1.mp4", "b.mp4,sad,x,o2.mp4"]))
    with pytest.raises(DataError, match="rows 2 and 3 both write o.mp4"):
        read_manifest(_manifest(tmp_path, ["a.mp4,happy,1,o.mp4", "b.mp4,sad,1,o.mp4"]))
    items = read_manifest(
        _manifest(tmp_path, ['a.mp4,"happy=0.7,sad=0.3",0.5,out/a.mp4', "b.mp4,sad;happy,,b.mp4"])
    )
    assert items[0].target == "happy=0.7,sad=0.3" and items[0].intensity == 0.5
    assert items[0].out == str((tmp_path / "out/a.mp4").resolve())
    assert items[1].target == "sad,happy" and items[1].intensity == 1.0


@pytest.mark.slow
def test_batch_on_two_dask_workers_is_resumable_and_reports_errors(tmp_path):
    from cmet.media import probe_video
    from flows.batch import run_batch
    from serving.sample import synthetic_face_video

    bundle = _tiny_bundle(tmp_path)
    for i in range(3):
        synthetic_face_video(tmp_path / f"c{i}.mp4", seconds=0.6, size=160, seed=i)
    (tmp_path / "bad.mp4").write_bytes(b"not a video" * 50)
    rows = [f"c{i}.mp4,happy,1.0,out/c{i}.mp4" for i in range(3)] + ["bad.mp4,sad,1.0,out/bad.mp4"]
    m = _manifest(tmp_path, rows)
    s = run_batch(m, bundle, workers=2)
    by_row = {r["row"]: r for r in s["items"]}
    assert (s["rows"], s["done"], s["failed"], s["skipped"]) == (4, 3, 1, 0), s
    assert by_row[5]["status"] == "failed" and by_row[5]["error"].startswith("VideoError: cannot open video")
    for i in range(3):
        info = probe_video(tmp_path / f"out/c{i}.mp4")
        assert info.n_frames == 15 and (info.w, info.h) == (160, 160)
    assert not (tmp_path / "out/bad.mp4").exists()
    report = json.loads(m.with_suffix(".report.json").read_text())
    assert report["failed"] == 1 and len(report["items"]) == 4
    again = run_batch(m, bundle, workers=2)
    assert (again["done"], again["skipped"], again["failed"]) == (0, 3, 1)


def _tiny_bundle(tmp_path: Path) -> Path:
    """A random-weight 19-d bundle (as tests/face's ``tiny_bundle``) saved under tmp_path."""
    import numpy as np
    import torch
    from omegaconf import OmegaConf

    from cmet.face.facs import D_EXPR
    from cmet.model.bundle import ModelBundle
    from cmet.model.connector import Connector

    torch.manual_seed(0)
    mcfg = {"name": "cmet", "d_model": 16, "n_layers": 1, "n_heads": 2, "ff_dim": 16, "dropout": 0.0,
            "window": 5, "conv_channels": 4, "conv_layers": 1}  # fmt: skip
    conn = Connector.from_cfg(OmegaConf.create(mcfg), 8, D_EXPR, "difference").eval()
    rng = np.random.default_rng(0)
    emotions = ["neutral", "happy", "sad"]
    banks = {e: rng.normal(size=(4, 8)).astype(np.float32) for e in emotions}
    return ModelBundle(conn, mcfg, 8, D_EXPR, emotions, [], banks).save(tmp_path / "bundle")


@pytest.mark.slow
def test_pipeline_runs_on_the_dask_task_runner(tmp_path, prefect_harness, pipeline_overrides):
    from flows.pipeline import run_pipeline

    s = run_pipeline(
        [
            *pipeline_overrides,
            "pipeline.task_runner=dask",
            "pipeline.max_workers=2",
            "pipeline.tune.n_trials=2",
            "pipeline.tune.steps=10",
            "train.steps=20",
        ]
    )
    assert s["registry"]["version"] == "1" and "acc_emo/cmet" in s["metrics"]
