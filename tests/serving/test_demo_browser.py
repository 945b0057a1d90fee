"""Slow: the demo page in headless Debian chromium against the served model: a 30 s clip through the job
path to the end (video, AU-offset plot, screenshot in .cmet/serving/test_artifacts), intensity up to the
API's maximum, a failure that clears the previous result, a blend and the portrait mode."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.serving.conftest import serve_model, talking_clip

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / ".cmet" / "serving" / "test_artifacts"
CHROME_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--window-size=1400,1200",
    "--autoplay-policy=no-user-gesture-required",
]


@pytest.fixture(scope="module")
def served(trained_bundle):
    with serve_model(trained_bundle) as srv:
        yield srv


@pytest.fixture(scope="module")
def driver(tmp_path_factory, require):
    chromium, driver_exe = shutil.which("chromium"), shutil.which("chromedriver")
    require(
        chromium and driver_exe,
        "Debian chromium / chromium-driver not installed (apt-get install chromium chromium-driver)",
    )
    from selenium import webdriver

    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for f in CHROME_FLAGS + [f"--user-data-dir={tmp_path_factory.mktemp('profile')}"]:
        opts.add_argument(f)
    d = webdriver.Chrome(options=opts, service=webdriver.ChromeService(executable_path=driver_exe))
    yield d
    d.quit()


def _open(driver, served):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(served.url + "/ui/")
    WebDriverWait(driver, 60).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#emotion option")) > 0)


def _submit_and_wait(driver, timeout: float) -> str:
    """Click Edit, wait for the edited video or an error -> 'ready' | 'error'."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver.find_element(By.ID, "submit").click()
    WebDriverWait(driver, timeout).until(
        lambda d: d.execute_script(
            "return document.getElementById('edited').dataset.ready === '1' || "
            "document.getElementById('status').className === 'error'"
        )
    )
    return (
        "ready"
        if driver.execute_script("return document.getElementById('edited').dataset.ready") == "1"
        else "error"
    )


def _n_frames(path: Path) -> int:
    import cv2

    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.grab():
        n += 1
    cap.release()
    return n


def _state(driver) -> dict:
    return driver.execute_script(
        "const v = document.getElementById('edited'); return {src: v.getAttribute('src'), duration: v.duration,"
        " frames: Number(document.getElementById('plot').dataset.frames), status: document.getElementById('status').textContent,"
        " cls: document.getElementById('status').className, download: !document.getElementById('download').hidden};"
    )


def test_a_30_s_clip_through_the_job_path_then_a_failure_clears_it(served, driver, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    clip = talking_clip(tmp_path / "clip30.mp4", 30.0)
    _open(driver, served)
    assert driver.find_element(By.ID, "intensity").get_attribute("max") == "3"  # the API's maximum
    driver.find_element(By.ID, "video-file").send_keys(str(clip))
    Select(driver.find_element(By.ID, "emotion")).select_by_value("happy")
    driver.execute_script(
        "const s = document.getElementById('intensity'); s.value = s.max; s.dispatchEvent(new Event('input'));"
    )
    assert _submit_and_wait(driver, 1500) == "ready", _state(driver)["status"]
    st = _state(driver)
    assert st["duration"] == pytest.approx(30.0, abs=0.2) and st["download"] and st["cls"] == "ok"
    assert st["frames"] == _n_frames(clip) and "intensity 3" in st["status"]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(ARTIFACTS / "demo_30s_job.png"))
    assert (ARTIFACTS / "demo_30s_job.png").stat().st_size > 10_000

    bad = tmp_path / "wrong_width.npy"
    np.save(bad, np.zeros((2, 7), np.float32))
    driver.find_element(By.ID, "features-file").send_keys(str(bad))
    assert _submit_and_wait(driver, 300) == "error"
    st = _state(driver)
    assert st["src"] is None and st["frames"] == 0 and not st["download"]  # the old result is gone
    assert "speech dimension" in st["status"] and "bad_input" in st["status"]


def test_blend_and_portrait_modes(served, driver, tmp_path):
    import cv2
    import soundfile as sf
    from selenium.webdriver.common.by import By

    _open(driver, served)
    driver.find_element(By.ID, "use-sample").click()
    for name, w in (("happy", "0.6"), ("surprised", "0.4")):
        box = driver.find_element(By.CSS_SELECTOR, f'#blend-weights input[data-emotion="{name}"]')
        box.clear()
        box.send_keys(w)
    assert driver.find_element(By.ID, "by-blend").is_selected()
    assert _submit_and_wait(driver, 600) == "ready", _state(driver)["status"]
    assert "happy:0.60+surprised:0.40" in _state(driver)["status"]

    frame = talking_clip(tmp_path / "c.mp4", 1.0)
    cap = cv2.VideoCapture(str(frame))
    ok, img = cap.read()
    cap.release()
    assert ok
    cv2.imwrite(str(tmp_path / "portrait.png"), img)
    t = np.arange(int(1.2 * 16000)) / 16000
    sf.write(
        tmp_path / "speech.wav",
        (0.3 * np.sin(2 * np.pi * 180 * t) * (1 + np.sin(2 * np.pi * 3 * t))).astype(np.float32),
        16000,
    )
    driver.find_element(By.ID, "portrait-file").send_keys(str(tmp_path / "portrait.png"))
    driver.find_element(By.ID, "driving-file").send_keys(str(tmp_path / "speech.wav"))
    driver.find_element(By.ID, "by-name").click()
    assert _submit_and_wait(driver, 600) == "ready", _state(driver)["status"]
    st = _state(driver)
    assert st["duration"] == pytest.approx(1.2, abs=0.1) and st["frames"] == 30
    driver.save_screenshot(str(ARTIFACTS / "demo_portrait.png"))
