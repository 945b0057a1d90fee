"""serving.build: the registry source (MLflow aliases) and the bentofile options."""

from __future__ import annotations

import pytest

from cmet.errors import ConfigError, ModelError


@pytest.mark.slow  # an MLflow SQLite store takes ~30 s to create on 2 shared cores
def test_resolve_registry_champion_and_version(tmp_path, model_dir, monkeypatch):
    import mlflow
    from mlflow import MlflowClient

    from serving.build import resolve_registry

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)
    try:
        with mlflow.start_run() as run:
            mlflow.log_metric("acc_emo/cmet", 0.61)
            mlflow.log_artifacts(str(model_dir / "bundle"), "bundle")
        c = MlflowClient()
        c.create_registered_model("cmet")
        mv = c.create_model_version("cmet", source=f"runs:/{run.info.run_id}/bundle", run_id=run.info.run_id)
        c.set_registered_model_alias("cmet", "champion", mv.version)

        bundle, info = resolve_registry("models:/cmet@champion", tmp_path / "dl")
        assert (bundle / "bundle.json").is_file() and (bundle / "model.safetensors").is_file()
        assert info["version"] == str(mv.version) and info["alias"] == "champion"
        assert info["run_id"] == run.info.run_id and info["registry_metrics"][
            "acc_emo/cmet"
        ] == pytest.approx(0.61)
        _, info2 = resolve_registry(f"models:/cmet/{mv.version}", tmp_path / "dl2")
        assert info2["alias"] == "champion"  # the alias the version holds
        with pytest.raises(ModelError, match="not in the registry"):
            resolve_registry("models:/cmet@challenger", tmp_path / "dl3")
        with pytest.raises(ConfigError, match="models:/"):
            resolve_registry("runs:/abc/bundle", tmp_path / "dl4")
    finally:
        mlflow.set_tracking_uri(None)


def test_build_options_cpu_and_gpu():
    from cmet.config import compose
    from serving.build import build_options

    cpu = build_options(compose([]), "cmet:abc")
    assert cpu["python"]["lock_packages"] is False
    assert "cuda_version" not in cpu["docker"] and cpu["models"] == ["cmet:abc"]
    assert any(p.startswith("bentoml==") for p in cpu["python"]["packages"])
    gpu = build_options(compose(["serving.profile=gpu"]), "cmet:abc")
    assert gpu["docker"]["cuda_version"] == "12.8" and gpu["labels"]["profile"] == "gpu"


def test_find_bundle_errors(tmp_path):
    from serving.build import find_bundle

    with pytest.raises(ModelError, match="no model bundle"):
        find_bundle(tmp_path)


def test_committed_bentofile_matches_build_options():
    from pathlib import Path

    import yaml

    from cmet.config import compose
    from serving.build import build_options

    committed = yaml.safe_load((Path(__file__).parents[2] / "serving" / "bentofile.yaml").read_text())
    expected = build_options(compose([]), "cmet:latest")
    packages = committed["python"].pop("packages")
    expected["python"] = {k: v for k, v in expected["python"].items() if k != "packages"}
    assert committed == {k: expected[k] for k in committed}
    assert committed["python"]["lock_packages"] is False
    import tomllib

    extra = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())["project"]
    assert (
        packages
        == extra["optional-dependencies"]["serving"]
        == build_options(compose([]), "x")["python"]["packages"]
    )
    for heavy in ("prefect", "mlflow", "optuna", "great-expectations", "transformers", "pyarrow", "scikit"):
        assert not any(p.startswith(heavy) for p in packages), heavy  # the service imports none of them
