"""The ``serving`` extra of pyproject.toml holds what the service imports: the service answers every
kind of request in a process where our code (cmet/, serving/) cannot import any other installed
distribution."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow  # a service process importing the whole stack through an import guard

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = r'''
import importlib.abc, importlib.metadata as md, json, os, sys
from serving.footprint import closure, requirement_lists
allowed = set(closure(requirement_lists()["serving"])) | {"cmet-ops"}
owners = md.packages_distributions()
from packaging.utils import canonicalize_name
refused = []

OURS = (os.path.join(os.getcwd(), "cmet"), os.path.join(os.getcwd(), "serving"))


def importer():
    f = sys._getframe(2)
    while f is not None and ("importlib" in f.f_code.co_filename or f.f_code.co_filename.startswith("<frozen")):
        f = f.f_back
    return f.f_code.co_filename if f is not None else ""


class Refuse(importlib.abc.MetaPathFinder):
    """Our code (cmet/, serving/) may import only distributions of the serving extra."""

    def find_spec(self, name, path=None, target=None):
        if not importer().startswith(OURS):
            return None
        top = name.split(".")[0]
        dists = {canonicalize_name(d) for d in owners.get(top, [])}
        if dists and not dists & allowed and top not in ("serving", "cmet"):
            refused.append(f"{name} (imported by {os.path.relpath(importer())})")
            raise ImportError(f"{name} belongs to {sorted(dists)}, outside the serving extra")
        return None

sys.meta_path.insert(0, Refuse())
from starlette.testclient import TestClient
from serving.service import CmetService
d = os.environ["PROBE_DIR"]
files = lambda **kw: {k: (os.path.basename(v), open(v, "rb").read(), "application/octet-stream") for k, v in kw.items()}
out = {}
with TestClient(CmetService.to_asgi(), raise_server_exceptions=False, client=("127.0.0.1", 50000)) as c:
    out["edit"] = c.post("/edit", files=files(video=d + "/v.mp4"), data={"emotion": "happy"}).status_code
    out["expressions"] = c.post("/expressions", files=files(video=d + "/v.mp4", target_features=d + "/f.npy")).status_code
    out["portrait"] = c.post("/edit", files=files(portrait=d + "/p.png", driving_speech=d + "/s.wav"), data={"emotion": "sad"}).status_code
    out["speech"] = c.post("/expressions", files=files(video=d + "/v.mp4", target_speech=d + "/s.wav")).status_code
    out["docs"] = c.get("/docs.json").status_code
print("RESULT " + json.dumps({"status": out, "refused": refused}))
'''


def test_the_service_runs_on_the_serving_extra_alone(model_dir, sample_video, tmp_path):
    import cv2
    import soundfile as sf

    (tmp_path / "v.mp4").write_bytes(sample_video.read_bytes())
    np.save(tmp_path / "f.npy", np.zeros((2, 16), np.float32))
    cap = cv2.VideoCapture(str(sample_video))
    ok, frame = cap.read()
    cap.release()
    cv2.imwrite(str(tmp_path / "p.png"), frame)
    t = np.arange(8000) / 16000
    sf.write(tmp_path / "s.wav", (0.3 * np.sin(2 * np.pi * 180 * t)).astype(np.float32), 16000)
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "CMET_SERVE_MODEL_DIR": str(model_dir),
        "PROBE_DIR": str(tmp_path),
        "BENTOML_DO_NOT_TRACK": "true",
    }
    import os

    env.update({k: v for k, v in os.environ.items() if k.startswith(("BENTOML_", "CMET_ASSETS"))})
    r = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )
    line = [x for x in r.stdout.splitlines() if x.startswith("RESULT ")]
    assert line, r.stdout[-2000:] + r.stderr[-4000:]
    res = json.loads(line[0][len("RESULT ") :])
    assert res["refused"] == [], res
    # the speech target is refused by the test model (simulated features), with a 400, not an import error
    assert res["status"] == {"edit": 200, "expressions": 200, "portrait": 200, "speech": 400, "docs": 200}
