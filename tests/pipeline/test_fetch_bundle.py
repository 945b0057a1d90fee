"""flows.registry.fetch_bundle / default_bundle_dir: the one way a bundle comes out of the registry."""

from __future__ import annotations

import json

import pytest

from cmet.config import compose
from cmet.errors import ModelError
from flows import registry as R


@pytest.fixture
def store(tmp_path):
    """An MLflow SQLite store in tmp with model ``m`` v1 (a fake bundle folder, logged as artifacts)."""
    import mlflow

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    mlflow.set_tracking_uri(uri)
    exp = mlflow.create_experiment("t", artifact_location=str(tmp_path / "art"))
    src = tmp_path / "src" / "bundle"
    src.mkdir(parents=True)
    (src / "bundle.json").write_text(json.dumps({"d_speech": 8}))
    (src / "model.safetensors").write_bytes(b"weights")
    with mlflow.start_run(experiment_id=exp) as r:
        mlflow.log_artifacts(str(src), "bundle")
    c = R.client(uri)
    R.register_candidate(c, "m", f"runs:/{r.info.run_id}/bundle", r.info.run_id, {"bundle_hash": "a"})
    yield c, uri
    mlflow.set_tracking_uri(None)


def test_fetch_bundle_by_version_and_alias_once(store, tmp_path, monkeypatch):
    import mlflow

    c, _ = store
    got = R.fetch_bundle("m", "1", tmp_path / "dl", c)
    assert (got / "bundle.json").is_file() and (got / "model.safetensors").read_bytes() == b"weights"
    with pytest.raises(R.RegistryError, match="no alias 'champion'"):
        R.fetch_bundle("m", "champion", tmp_path / "dl2", c)
    c.set_registered_model_alias("m", R.CHAMPION, "1")
    assert (R.fetch_bundle("m", "champion", tmp_path / "dl2", c) / "bundle.json").is_file()
    with pytest.raises(R.RegistryError, match="no version '7'"):
        R.fetch_bundle("m", 7, tmp_path / "dl3", c)
    assert not (tmp_path / "dl3").exists()

    def boom(**kw):
        raise AssertionError("downloaded twice")

    monkeypatch.setattr(mlflow.artifacts, "download_artifacts", boom)
    assert R.fetch_bundle("m", "1", tmp_path / "dl", c) == got  # already there: no download


def test_default_bundle_dir_champion_then_local_then_error(store, tmp_path):
    c, uri = store
    cfg = compose(
        [f"paths.work_dir={tmp_path}/work", f"pipeline.tracking_uri={uri}", "pipeline.registered_model=m"]
    )
    with pytest.raises(ModelError, match="no trained model found.*--model"):
        R.default_bundle_dir(cfg)
    local = tmp_path / "work" / "runs" / "r1" / "bundle"
    local.mkdir(parents=True)
    (local / "bundle.json").write_text("{}")
    assert R.default_bundle_dir(cfg) == local and R.default_bundle(cfg) == (local, None)
    c.set_registered_model_alias("m", R.CHAMPION, "1")
    got = R.default_bundle_dir(cfg)
    assert (
        got.is_relative_to(tmp_path / "work" / "models" / "champion-v1") and (got / "bundle.json").is_file()
    )
    # the champion's registry identity comes with it (cmet edit's provenance tag: "m v1 (champion)")
    assert R.default_bundle(cfg) == (got, {"model": "m", "version": "1", "alias": R.CHAMPION})


def test_champion_lookup_reads_a_local_store_without_mlflow(store, tmp_path):
    """cmet edit's default model: with a local SQLite store and the champion downloaded, the alias
    is read from the store (no MLflow import, ~2 s); a moved alias is followed (download once)."""
    import subprocess
    import sys

    c, uri = store
    c.set_registered_model_alias("m", R.CHAMPION, "1")
    assert R.champion_version_sqlite(uri, "m") == 1
    assert R.champion_version_sqlite(uri, "other") is None
    assert R.champion_version_sqlite("http://127.0.0.1:5000", "m") is None
    assert R.champion_version_sqlite(f"sqlite:///{tmp_path}/absent.db", "m") is None
    overrides = [
        f"paths.work_dir={tmp_path}/work",
        f"pipeline.tracking_uri={uri}",
        "pipeline.registered_model=m",
    ]
    first = R.default_bundle(compose(overrides))  # downloads champion-v1 through MLflow
    code = (
        "import sys, json; from cmet.config import compose; from flows.registry import default_bundle; "
        f"f, i = default_bundle(compose({overrides!r})); "
        "print(json.dumps([str(f), i, 'mlflow' in sys.modules]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    folder, ident, imported = json.loads(out.stdout.strip().splitlines()[-1])
    assert (folder, ident) == (str(first[0]), first[1]) and not imported
    # a new champion: the store says v2, its folder is not there yet -> MLflow downloads it
    mv = c.get_model_version("m", "1")
    c.create_model_version("m", mv.source, mv.run_id)
    c.set_registered_model_alias("m", R.CHAMPION, "2")
    folder2, ident2 = R.default_bundle(compose(overrides))
    assert ident2["version"] == "2" and "champion-v2" in str(folder2)
