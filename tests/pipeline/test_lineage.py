"""Lineage and the tracking UI after one pipeline run (slow): the registry version links to its logged
model; the runs list their dataset inputs, git commit and Prefect flow run (and the Prefect run names
the MLflow run); meaningful run names; step-indexed curves; a lean metric set; an input example; the
model card; one confusion matrix per method. Pruned trials end FINISHED, marked pruned (fast)."""

from __future__ import annotations

import json

import mlflow
import pytest

from cmet.config import compose
from cmet.errors import ConfigError


@pytest.mark.slow
def test_run_lineage_and_tracking_ui(tmp_path, prefect_harness, pipeline_overrides):
    from prefect.client.orchestration import get_client

    from flows.caching import data_key
    from flows.pipeline import run_pipeline

    ov = [*pipeline_overrides, "pipeline.tune.steps=10", "train.steps=20"]
    s = run_pipeline(ov)
    # every stage's key builds on the data's inputs, not on its arrays (those differ across CPUs)
    assert s["data_hash"] == data_key(compose(ov)) != s["data_content_hash"]
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    mlflow.set_tracking_uri(uri)
    c = mlflow.MlflowClient(uri)
    assert c.get_experiment_by_name("cmet").tags["mlflow.experimentKind"] == "custom_model_development"
    runs = {r.info.run_id: r for r in mlflow.search_runs(experiment_names=["cmet"], output_format="list")}
    parent = runs[s["parent_run_id"]]
    final = runs[s["train"]["run_id"]]
    trials = [r for r in runs.values() if r.data.tags.get("stage") == "trial"]
    # registry version <-> logged model
    mv = c.get_model_version("cmet", s["registry"]["version"])
    model_id = mv.source.removeprefix("models:/")
    links = json.loads(c.get_logged_model(model_id).tags["mlflow.modelVersions"])
    assert {"name": "cmet", "version": mv.version} in links and mv.run_id == final.info.run_id
    # datasets, code, Prefect on both sides
    for r in (parent, final):
        ins = {d.dataset.name: d.dataset for d in r.inputs.dataset_inputs}
        assert set(ins) == {"simulator-train", "simulator-val", "simulator-test"}, ins
        assert (
            ins["simulator-train"].digest.startswith(s["data_content_hash"])
            and "file://" in ins["simulator-train"].source
        )
        assert len(r.data.tags["git.commit"]) == 40 and r.data.tags["git.dirty"] in ("true", "false")
        assert r.data.tags["prefect.flow_run_id"]
    with get_client(sync_client=True) as pc:
        fr = pc.read_flow_run(parent.data.tags["prefect.flow_run_id"])
    assert f"mlflow-run:{parent.info.run_id}" in fr.tags
    # names: no child called "final"; the final run carries its version
    assert final.info.run_name.startswith(f"cmet-v{mv.version}-train-simulator-20steps-")
    assert parent.info.run_name.startswith("pipeline-") and parent.info.run_name.endswith(fr.name)
    assert sorted(t.info.run_name for t in trials) == ["trial-0", "trial-1"]
    # curves with steps, lean metrics
    steps = [m.step for m in c.get_metric_history(final.info.run_id, "train/loss")]
    assert len(steps) >= 2 and steps == sorted(steps) and steps[-1] == 20
    assert len({m.step for m in c.get_metric_history(trials[0].info.run_id, "val/acc_emo")}) >= 2
    assert len(final.data.metrics) <= 20 and len(parent.data.metrics) <= 12, (
        final.data.metrics,
        parent.data.metrics,
    )
    assert sum(k.startswith("metric.") for k in mv.tags) <= 12
    # model: input example; card; figures
    assert "model/input_example.json" in {a.path for a in c.list_artifacts(final.info.run_id, "model")}
    card = mlflow.artifacts.load_text(f"runs:/{final.info.run_id}/model_card.md")
    for words in (
        "Out-of-scope use",
        "Non-consensual",
        f"v{mv.version}",
        final.data.tags["git.commit"],
        "Limitations",
    ):
        assert words in card, words
    figs = {a.path.split("/")[-1] for a in c.list_artifacts(final.info.run_id, "figures")}
    assert {"confusion_matrix_cmet.png", "confusion_matrix_speech_direct.png"} <= figs, figs
    mlflow.set_tracking_uri(None)


def test_pruned_trial_is_finished_and_marked_pruned(tmp_path):
    from cmet.data import build_feature_set
    from flows.tracking import setup_experiment
    from flows.tune import apply_params, run_worker

    cfg = compose(
        [
            "experiment=fast",
            f"paths.work_dir={tmp_path}/work",
            f"pipeline.tracking_uri=sqlite:///{tmp_path}/mlflow.db",
            "pipeline.tune.n_trials=1",
            "pipeline.tune.steps=4",
            "pipeline.tune.reports=2",
        ]
    )
    # a floor above any Acc_emo (<= 1): the trial is pruned at its first report
    cfg = apply_params(cfg, {"pipeline.tune.pruner": {"kind": "threshold", "lower": 2.0}})
    fs_dir = build_feature_set(cfg).save(tmp_path / "fs")
    exp = setup_experiment(cfg)
    with pytest.raises(ConfigError, match="no trial completed"):
        run_worker(cfg, str(fs_dir), None, exp, "s-pruned")
    (r,) = mlflow.search_runs(experiment_ids=[exp], output_format="list")
    assert r.info.status == "FINISHED" and r.data.tags["optuna.state"] == "PRUNED"
    assert r.info.run_name == "trial-0-pruned"
    assert [m.step for m in mlflow.MlflowClient().get_metric_history(r.info.run_id, "val/acc_emo")] == [2]
    mlflow.set_tracking_uri(None)
