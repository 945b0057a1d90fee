"""Cache invalidation: each stage's key changes with the code, the config sections and the data it
depends on, and with nothing else; every cmet source file a stage really imports is hashed into its key
(else a change there would reuse a stale cached result)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cmet import hashing
from cmet.data import DATA_CODE
from flows import caching

ROOT = Path(__file__).resolve().parents[2]
# imported by the stages without changing a result: package markers, error classes, config composition
# (the config itself is hashed by value), figures, the audio encoder registry (features are hashed by
# content: an encoder change that changes them changes the data hash)
NEUTRAL_FILES = {
    "cmet/__init__.py",
    "cmet/face/__init__.py",
    "cmet/audio/__init__.py",
    "cmet/errors.py",
    "cmet/config.py",
    "cmet/conf.py",
    "cmet/plots.py",
    "cmet/hashing.py",  # computes the keys themselves
}


@pytest.fixture
def code_copy(tmp_path, monkeypatch):
    """A copy of cmet/ that hash_code reads (cmet.hashing.ROOT -> the copy): edit it freely."""
    shutil.copytree(ROOT / "cmet", tmp_path / "cmet", ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(hashing, "ROOT", tmp_path)
    return tmp_path


def _touch(root: Path, rel: str) -> None:
    p = root / rel
    p.write_text(p.read_text() + "\n# changed\n")


def test_keys_follow_code_config_and_data(code_copy, compose_cfg):
    cfg = compose_cfg("experiment=fast")
    dk, tk, ek = caching.data_key(cfg), caching.train_key(cfg, "D1"), caching.eval_hash(cfg, "D1")
    # data: another content hash -> another train and eval key
    assert caching.train_key(cfg, "D2") != tk and caching.eval_hash(cfg, "D2") != ek
    # config: a train setting retrains but keeps data and evaluation set; an eval setting only re-evaluates
    lr = compose_cfg("experiment=fast", "train.lr=0.0123")
    assert caching.train_key(lr, "D1") != tk
    assert caching.data_key(lr) == dk and caching.eval_hash(lr, "D1") == ek
    ev = compose_cfg("experiment=fast", "eval.n_draws=7")
    assert caching.eval_hash(ev, "D1") != ek and caching.train_key(ev, "D1") == tk
    data = compose_cfg("experiment=fast", "data.seed=99")
    assert caching.data_key(data) != dk
    # code: a change in the model package retrains and re-evaluates, not the data
    _touch(code_copy, "cmet/model/connector.py")
    assert caching.train_key(cfg, "D1") != tk and caching.eval_hash(cfg, "D1") != ek
    assert caching.data_key(cfg) == dk
    tk2 = caching.train_key(cfg, "D1")
    _touch(code_copy, "cmet/data/simulator.py")
    assert caching.data_key(cfg) != dk
    assert caching.train_key(cfg, "D1") != tk2  # the sampler lives in cmet/data too
    # a file no stage uses changes nothing
    dk3, tk3 = caching.data_key(cfg), caching.train_key(cfg, "D1")
    (code_copy / "cmet" / "model" / "notes.txt").write_text("not code")
    assert caching.data_key(cfg) == dk3 and caching.train_key(cfg, "D1") == tk3


def test_the_release_data_key_follows_its_face_track_code(code_copy, compose_cfg, tmp_path):
    """release_au (make run's data) builds its face tracks in cmet/face/tracks.py: a change there is a
    change of the data (the key hashes inputs and code, not the arrays that would have shown it)."""
    cfg = compose_cfg("data=release_au", f"data.release_dir={tmp_path}/absent")
    k = caching.data_key(cfg)
    _touch(code_copy, "cmet/face/tracks.py")
    assert caching.data_key(cfg) != k


def test_features_dir_content_is_in_the_data_key(compose_cfg, tmp_path):
    feats = tmp_path / "feats"
    feats.mkdir()
    (feats / "a.npy").write_bytes(b"1")
    cfg = compose_cfg(f"pipeline.features_dir={feats}")
    k = caching.data_key(cfg)
    (feats / "a.npy").write_bytes(b"2")
    assert caching.data_key(cfg) != k


def _covered(rel: str, packages: tuple[str, ...]) -> bool:
    return any(rel == p or rel.startswith(p.rstrip("/") + "/") for p in packages)


def _stage_files(work: Path, stage: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, str(Path(__file__).parent / "stage_modules.py"), str(work), stage],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    d = json.loads(out.stdout.strip().splitlines()[-1])
    return set(d["after"]) - NEUTRAL_FILES


@pytest.mark.slow  # three fresh interpreters running a tiny stage each (~1-2 min on 2 cores)
def test_every_module_a_stage_runs_is_hashed_into_its_key(tmp_path):
    """data (build_feature_set, on the simulator and on make run's release_au), train (cmet.train.train, which ends with the evaluation whose metrics
    the evaluate stage reuses) and evaluate (cmet.evaluate.evaluate) each in a fresh interpreter."""
    stages = {
        "data": DATA_CODE,
        "data-release": DATA_CODE,
        "train": caching.MODEL_CODE + caching.EVAL_CODE,  # the train key, and the eval key of its metrics
        "evaluate": caching.EVAL_CODE,
    }
    missing = {}
    for stage, packages in stages.items():
        files = _stage_files(tmp_path, stage)
        assert files, stage
        missing[stage] = sorted(f for f in files if not _covered(f, packages))
    assert missing == {"data": [], "data-release": [], "train": [], "evaluate": []}, missing
