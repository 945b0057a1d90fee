"""The logged model is portable (slow: a training, a fresh venv installed from the model's own
``requirements.txt``, a second interpreter): it is logged from code with the ``cmet`` package as its
code path and pinned third-party requirements, and it loads and predicts in a new, empty venv where
the project is NOT importable and every package comes from ``pip install -r requirements.txt``
(about 2 min here from the package index)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytestmark = pytest.mark.slow

SCRIPT = r"""
import importlib.util, json, sys
import numpy as np, pandas as pd
assert importlib.util.find_spec("cmet") is None and importlib.util.find_spec("flows") is None, "project visible"
import mlflow.pyfunc
m = mlflow.pyfunc.load_model(sys.argv[1])
x = pd.DataFrame(np.load(sys.argv[2]), columns=[f"expr_{i}" for i in range(int(sys.argv[3]))])
y = m.predict(x, params={"emotion": "happy", "intensity": 1.0})
np.save(sys.argv[4], np.asarray(y, np.float32))
"""


def test_logged_model_loads_without_the_project(tmp_path):
    import mlflow

    from cmet.config import compose
    from cmet.data import build_feature_set
    from cmet.model.bundle import ModelBundle
    from cmet.train import train
    from flows.pyfunc_model import log_pyfunc

    cfg = compose(["experiment=fast", f"paths.work_dir={tmp_path}/work", "train.steps=10", "device=cpu"])
    fs = build_feature_set(cfg)
    bundle_dir = train(cfg, features=fs, out_dir=tmp_path / "run")["bundle_dir"]
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path}/mlflow.db")
    exp = mlflow.create_experiment("portable", artifact_location=(tmp_path / "art").as_uri())
    codes = np.asarray(fs.frames(0)[:12], np.float32)
    with mlflow.start_run(experiment_id=exp):
        example = pd.DataFrame(codes[:5], columns=[f"expr_{i}" for i in range(fs.d_expr)])
        info = log_pyfunc(bundle_dir, fs.d_expr, example)
    local = Path(mlflow.artifacts.download_artifacts(info.model_uri, dst_path=str(tmp_path / "model")))
    mlflow.set_tracking_uri(None)
    reqs = (local / "requirements.txt").read_text().split()
    assert reqs and all("==" in r for r in reqs) and not any(r.startswith("cmet") for r in reqs), reqs
    assert (local / "code" / "cmet" / "model" / "bundle.py").is_file()
    # a new, empty venv: every package from the logged model's requirements.txt, no project
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "-r", str(local / "requirements.txt")],
        capture_output=True,
        text=True,
        timeout=1500,
    )
    assert pip.returncode == 0, pip.stderr[-3000:]
    np.save(tmp_path / "x.npy", codes)
    py = venv / "bin" / "python"
    out = subprocess.run(
        [str(py), "-c", SCRIPT, str(local), str(tmp_path / "x.npy"), str(fs.d_expr), str(tmp_path / "y.npy")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    expected = ModelBundle.load(bundle_dir).edit_codes(codes, "happy", intensity=1.0)
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), expected, rtol=1e-5, atol=1e-6)
