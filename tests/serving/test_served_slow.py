"""Slow: build the bento from a freshly trained bundle, serve it as a subprocess on a free loopback port,
call every endpoint, run schemathesis against its OpenAPI schema, drive the demo page in headless
Debian chromium, and stop the server by its own PID."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / ".cmet" / "serving" / "test_artifacts"


def _champion_uri() -> str | None:
    """models:/cmet@champion when the registry has one in the 19-AU face space, else None."""
    try:
        from mlflow import MlflowClient

        mv = MlflowClient().get_model_version_by_alias("cmet", "champion")
    except Exception:
        return None
    return "models:/cmet@champion" if mv else None


@pytest.fixture(scope="module")
def bento_source(tmp_path_factory):
    """What the bento is built from: CMET_TEST_BUNDLE, else the registry champion, else a small C-MET
    bundle trained here on the release features (data=release_au: ../shared, else the vendored copy)."""
    if os.environ.get("CMET_TEST_BUNDLE"):
        return Path(os.environ["CMET_TEST_BUNDLE"])
    if os.environ.get("CMET_TEST_USE_CHAMPION", "1") == "1" and (uri := _champion_uri()):
        return uri
    import torch

    from cmet.config import compose
    from cmet.train import train

    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("train")
    cfg = compose(
        [
            "data=release_au",
            "train.steps=150",
            "train.batch_size=64",
            "train.eval_every=150",
            "train.checkpoint_every=150",
            f"paths.work_dir={out}/work",
        ]
    )
    metrics = train(cfg, out_dir=out / "run")
    return Path(metrics["bundle_dir"])


@pytest.fixture(scope="module")
def served(bento_source):
    from cmet.config import compose
    from serving.build import build_bento
    from serving.server import ServedBento

    tag = build_bento(bento_source, compose([]))
    # no rate limit here: schemathesis sends hundreds of requests and must see real answers, not 429s
    srv = ServedBento(tag, env={"CMET_SERVING_SET": "rate_limit.requests_per_minute=0"}).start()
    try:
        yield srv
    finally:
        pid = srv.pid
        code = srv.stop()
        assert code is not None, "the server did not stop"
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)  # the PID is gone


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    """2 s of the release video where ../shared exists, else the synthetic talking face of serving.sample."""
    from cmet.config import compose
    from serving.sample import make_sample

    dst = tmp_path_factory.mktemp("clip") / "clip.mp4"
    make_sample(dst, Path(str(compose([]).paths.release_dir)), seconds=2.0)
    return dst


def _video(clip: Path):
    return {"video": ("clip.mp4", clip.read_bytes(), "video/mp4")}


def _frames(path: Path) -> tuple[int, float]:
    import cv2

    cap = cv2.VideoCapture(str(path))
    fps = cap.get(cv2.CAP_PROP_FPS)
    n = 0
    while cap.grab():
        n += 1
    cap.release()
    return n, fps


def _audio_seconds(path: Path, tmp: Path) -> float:
    """Duration of the audio track, decoded (ffmpeg -> 16 kHz wav -> soundfile); 0.0 without audio."""
    import soundfile as sf
    from imageio_ffmpeg import get_ffmpeg_exe

    wav = tmp / f"{path.stem}_audio.wav"
    r = subprocess.run(
        [
            get_ffmpeg_exe(),
            "-hide_banner",
            "-v",
            "error",
            "-y",
            "-i",
            str(path),
            "-vn",
            "-ac",
            "1",
            "-ar",
            "16000",
            str(wav),
        ],
        capture_output=True,
        text=True,
    )
    if r.returncode != 0 or not wav.is_file():
        return 0.0
    info = sf.info(str(wav))
    return info.frames / info.samplerate


def test_every_endpoint(served, clip, tmp_path):
    import requests
    from openapi_spec_validator import validate

    url = served.url
    for path in ("/healthz", "/livez", "/readyz"):
        assert requests.get(url + path, timeout=10).status_code == 200
    validate(requests.get(url + "/docs.json", timeout=30).json())
    assert "C-MET" in requests.get(url + "/ui/", timeout=10).text
    assert requests.get(url + "/ui/sample.mp4", timeout=10).status_code == 200

    em = requests.post(url + "/emotions", json={}, timeout=30).json()
    names = {e["name"]: e["clips"] for e in em["emotions"]}
    assert "happy" in names and names["happy"] > 0
    ver = requests.post(url + "/version", json={}, timeout=30).json()
    assert ver["version"] and "metrics" in ver and ver["bento_model"].startswith("cmet:")

    r = requests.post(
        url + "/edit", files=_video(clip), data={"emotion": "happy", "intensity": "1.0"}, timeout=300
    )
    assert r.status_code == 200, r.text
    out = tmp_path / "edited.mp4"
    out.write_bytes(r.content)
    assert _frames(out)[0] == _frames(clip)[0] and _frames(out)[1] == pytest.approx(_frames(clip)[1])
    a_in, a_out = _audio_seconds(clip, tmp_path), _audio_seconds(out, tmp_path)
    assert a_in > 1.5 and a_out == pytest.approx(a_in, abs=0.1), (a_in, a_out)
    assert "total_server" in json.loads(r.headers["x-cmet-timings"])

    r = requests.post(
        url + "/expressions", files=_video(clip), data={"blend": "happy:0.5,surprised:0.5"}, timeout=300
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert len(body["au_names"]) == 19
    edited = np.asarray(body.get("edited_codes") or body.get("codes"))
    assert edited.shape == (_frames(clip)[0], 19)

    r = requests.post(url + "/edit_job/submit", files=_video(clip), data={"emotion": "sad"}, timeout=60)
    task = r.json()["task_id"]
    for _ in range(300):
        st = requests.get(url + "/edit_job/status", params={"task_id": task}, timeout=10).json()["status"]
        if st not in ("in_progress", "pending"):
            break
        time.sleep(1)
    assert st == "completed"
    got = requests.get(url + "/edit_job/get", params={"task_id": task}, timeout=60)
    assert got.status_code == 200 and got.content[4:8] == b"ftyp"

    bad = requests.post(url + "/edit", files=_video(clip), data={"emotion": "joy"}, timeout=60)
    assert bad.status_code == 400 and "joy" in bad.text


def test_schemathesis_finds_no_server_error(served, tmp_path, require):
    exe = shutil.which("schemathesis", path=str(Path(sys.executable).parent)) or shutil.which("schemathesis")
    require(exe, "schemathesis not installed (pip install -e .[dev])")
    r = subprocess.run(
        [
            exe,
            "run",
            served.url + "/docs.json",
            "--checks",
            "not_a_server_error",
            "-n",
            "15",
            "--request-timeout",
            "120",
            "--generation-deterministic",
            "--no-color",
            "--report",
            "junit",
            "--report-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert r.returncode == 0, r.stdout[-4000:] + "\n" + served.log_tail()


CHROME_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--window-size=1200,1000",
    "--autoplay-policy=no-user-gesture-required",
]


def test_demo_page_in_headless_chromium(served, tmp_path, require):
    chromium, driver_exe = shutil.which("chromium"), shutil.which("chromedriver")
    require(
        chromium and driver_exe,
        "Debian chromium / chromium-driver not installed (`make test-deps`: apt-get install chromium chromium-driver)",
    )
    from selenium import webdriver
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for f in CHROME_FLAGS + [f"--user-data-dir={tmp_path / 'profile'}"]:
        opts.add_argument(f)
    driver = webdriver.Chrome(options=opts, service=webdriver.ChromeService(executable_path=driver_exe))
    try:
        driver.get(served.url + "/ui/")
        WebDriverWait(driver, 60).until(
            lambda d: len(d.find_elements(By.CSS_SELECTOR, "#emotion option")) > 0
        )
        Select(driver.find_element(By.ID, "emotion")).select_by_value("happy")
        driver.find_element(By.ID, "use-sample").click()
        driver.find_element(By.ID, "submit").click()
        WebDriverWait(driver, 400).until(
            lambda d: (
                d.execute_script("return document.getElementById('edited').dataset.ready === '1'")
                or "error" in (d.find_element(By.ID, "status").get_attribute("class") or "")
            )
        )
        status = driver.find_element(By.ID, "status").text
        assert driver.execute_script("return document.getElementById('edited').dataset.ready") == "1", status
        duration = driver.execute_script("return document.getElementById('edited').duration")
        assert duration > 0
        driver.execute_script("const v = document.getElementById('edited'); v.currentTime = 0; v.play();")
        time.sleep(1.0)
        t = driver.execute_script("return document.getElementById('edited').currentTime")
        assert t > 0, "the edited video does not play"
        assert driver.find_element(By.ID, "download").get_attribute("href").startswith("blob:")
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(ARTIFACTS / "demo_page.png"))
    finally:
        driver.quit()
