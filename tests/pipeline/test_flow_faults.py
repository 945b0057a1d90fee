"""The Prefect flow stops at validation on faulty data: nothing trains, the report is kept (file +
MLflow artifact of the pipeline run), the failing expectations are named."""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
import pytest

from data_checks.run import DataCheckError


def _run(overrides):
    from flows.pipeline import run_pipeline

    state = run_pipeline(overrides, return_state=True)
    assert state.is_failed(), state
    exc = state.result(raise_on_failure=False)
    return exc


def _runs(tmp_path):
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path}/mlflow.db")
    return mlflow.search_runs(experiment_names=["cmet"], output_format="list")


# slow: a temporary Prefect API server (~20-80 s to start on a shared 2-core machine) + two flow runs;
# the same faults are checked suite by suite in the fast test_data_checks.py
@pytest.mark.slow
@pytest.mark.parametrize("fault", ["raw", "features"])
def test_faulty_data_stops_before_training(
    fault, tiny_fs, tmp_path, prefect_harness, pipeline_overrides, webhook
):
    if fault == "raw":  # unknown emotion + missing file + an identity in both train and test
        c = tiny_fs.clips
        c["audio_path"] = c["audio_path"].astype(object)
        c.loc[3, "emotion"] = "furious"
        c.loc[5, "audio_path"] = str(tmp_path / "missing.wav")
        c.loc[c.index[-1], "split"] = "train"  # last clip belongs to id4 (test)
        expected = ["furious", "files_ok", "n_splits"]
    else:  # a NaN feature frame
        tiny_fs.expr[tiny_fs.clips["frame_start"].iloc[2], 0] = np.nan
        expected = ["expr_finite", tiny_fs.clips["clip_id"].iloc[2]]
    folder = tiny_fs.save(tmp_path / "faulty")
    url, received = webhook
    exc = _run(
        [*pipeline_overrides, f"pipeline.features_dir={folder}", f"pipeline.schedule.notify_url={url}"]
    )
    assert isinstance(exc, DataCheckError), repr(exc)
    msg = str(exc)
    assert f"data check '{fault}' failed" in msg
    for word in expected:
        assert word in msg, msg
    # nothing downstream ran: no trial / final runs, no training folder, no Optuna study
    runs = _runs(tmp_path)
    assert [r.data.tags.get("stage") for r in runs] == ["pipeline"], [r.info.run_name for r in runs]
    parent = runs[0]
    assert parent.info.status == "FAILED"
    assert parent.data.tags[f"data_check.{fault}"] == "FAILED"
    arts = [a.path for a in mlflow.MlflowClient().list_artifacts(parent.info.run_id, "data_checks")]
    assert f"data_checks/data_check_{fault}.json" in arts and f"data_checks/data_check_{fault}.html" in arts
    work = Path(tmp_path) / "work"
    assert not (work / "cache" / "train").exists() and not (work / "optuna").exists()
    assert exc.report.json_path and Path(exc.report.json_path).is_file()
    # the failure webhook got the failed run
    assert [(r["flow"], r["state"]) for r in received] == [("cmet-pipeline", "FAILED")], received
