"""The service over HTTP, in-process (starlette TestClient on the BentoML ASGI app): listing endpoints,
BentoML's health routes, the demo page, the OpenAPI schema, and 4xx answers with clear messages."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest


def post_json(client, path, body=None):
    return client.post(path, json=body or {})


def err(resp) -> str:
    data = resp.json()
    if isinstance(data, list):
        data = data[0]
    return data["error"]


def test_emotions_lists_bank_sizes(client):
    r = post_json(client, "/emotions")
    assert r.status_code == 200
    data = r.json()
    assert data["count"] == 4
    assert {e["name"]: e["clips"] for e in data["emotions"]} == {
        "angry": 5,
        "happy": 6,
        "neutral": 7,
        "sad": 8,
    }


def test_version_names_model_and_figures(client):
    r = post_json(client, "/version")
    assert r.status_code == 200
    v = r.json()
    assert v["version"] == "7" and v["alias"] == "champion" and v["model"] == "cmet"
    assert v["metrics"] == {"acc_emo": 0.5}
    assert v["device"] in ("cpu", "cuda")
    assert v["limits"]["max_video_s"] > 0


@pytest.mark.parametrize("path", ["/healthz", "/livez", "/readyz"])
def test_health_routes(client, path):
    assert client.get(path).status_code == 200


def test_demo_page_served(client):
    r = client.get("/ui/index.html")
    assert r.status_code == 200 and "text/html" in r.headers["content-type"]
    for element in ('id="use-sample"', 'id="emotion"', 'id="intensity"', 'id="edited"', 'id="download"'):
        assert element in r.text
    assert client.get("/ui/").status_code == 200


def test_openapi_schema_is_valid(client):
    from openapi_spec_validator import validate

    spec = client.get("/docs.json").json()
    validate(spec)
    for route in ("/edit", "/expressions", "/emotions", "/version", "/edit_job/submit"):
        assert route in spec["paths"], route


def _video_file(sample_video: Path):
    return {"video": ("face.mp4", sample_video.read_bytes(), "video/mp4")}


@pytest.mark.parametrize(
    "data, status, words",
    [
        ({"emotion": "joy"}, 400, "unknown emotion 'joy'"),
        ({}, 400, "exactly one target"),
        ({"emotion": "happy", "blend": "sad:1"}, 400, "exactly one target"),
        ({"emotion": "happy", "intensity": "9"}, 400, "outside the accepted range"),
        ({"blend": "happy:-1"}, 400, ">= 0"),
    ],
)
def test_edit_bad_targets_answer_400(client, sample_video, data, status, words):
    r = client.post("/edit", files=_video_file(sample_video), data=data)
    assert r.status_code == status, r.text
    assert words in err(r)


def test_not_a_video_is_415(client, tmp_path):
    r = client.post(
        "/edit",
        files={"video": ("x.mp4", b"not a video at all" * 50, "video/mp4")},
        data={"emotion": "happy"},
    )
    assert r.status_code == 415 and "not a readable video" in err(r)
    # wrong declared content type is refused by BentoML's validator before our code (400)
    r = client.post(
        "/expressions", files={"video": ("x.txt", b"hello", "text/plain")}, data={"emotion": "happy"}
    )
    assert r.status_code == 400 and "content type" in r.text.lower()


def test_features_are_checked_and_pickles_refused(client, sample_video, tmp_path):
    p = tmp_path / "evil.npy"
    np.save(p, np.array([{"x": 1}], dtype=object), allow_pickle=True)
    files = {
        **_video_file(sample_video),
        "target_features": ("evil.npy", p.read_bytes(), "application/octet-stream"),
    }
    r = client.post("/expressions", files=files)
    assert r.status_code == 400 and "pickles are not accepted" in err(r)
    np.save(p, np.ones((3, 5), np.float32))
    files["target_features"] = ("f.npy", p.read_bytes(), "application/octet-stream")
    r = client.post("/expressions", files=files)
    assert r.status_code == 400 and "speech dimension 16" in err(r)


def test_portrait_without_speech_is_400(client, tmp_path):
    import cv2

    img = tmp_path / "p.png"
    cv2.imwrite(str(img), np.full((64, 64, 3), 128, np.uint8))
    r = client.post(
        "/edit", files={"portrait": ("p.png", img.read_bytes(), "image/png")}, data={"emotion": "happy"}
    )
    assert r.status_code == 400 and "driving_speech" in err(r)
    r = client.post("/edit", data={"emotion": "happy"})
    assert r.status_code == 400 and "either a video, or a portrait" in err(r)


def test_request_temp_folders_are_emptied(client, sample_video):
    from bentoml._internal.context import request_tempdir_pool

    for _ in range(3):
        client.post("/edit", files=_video_file(sample_video), data={"emotion": "nope"})
    dirs = list(request_tempdir_pool._pool)
    assert dirs, "BentoML did not use per-request temp folders"
    leftovers = [p for d in dirs for p in Path(d).iterdir()]
    assert leftovers == []


def test_body_limit_middleware_answers_413():
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route
    from starlette.testclient import TestClient

    from serving.inputs import BodyLimitMiddleware

    async def echo(request):
        return PlainTextResponse(str(len(await request.body())))

    app = BodyLimitMiddleware(Starlette(routes=[Route("/x", echo, methods=["POST"])]), max_bytes=1000)
    with TestClient(app) as c:
        assert c.post("/x", content=b"a" * 999).text == "999"
        r = c.post("/x", content=b"a" * 5000)
        assert r.status_code == 413 and "over the limit" in r.json()["error"]

        def chunks():  # no Content-Length: counted while streaming
            for _ in range(10):
                yield b"b" * 500

        r = c.post("/x", content=chunks())
        assert r.status_code == 413


def test_error_json_is_one_message(client, sample_video):
    r = client.post("/edit", files=_video_file(sample_video), data={"emotion": "joy"})
    body = r.json()
    assert json.dumps(body).count("error") == 1


def test_file_fields_never_fetch_urls(client):
    # BentoML would download a string sent in a file field; this service refuses it
    r = client.post(
        "/edit",
        data={"video": "http://127.0.0.1:1/x.mp4", "emotion": "happy"},
        files={"dummy": ("d.txt", b"x", "text/plain")},
    )
    assert r.status_code == 400 and "not a string or URL" in r.text


def test_malformed_multipart_is_400(client):
    r = client.post("/emotions", content=b"{}", headers={"content-type": "multipart/form-data"})
    assert r.status_code == 400 and "malformed multipart" in r.text
    body = b'--xx\r\nContent-Disposition: form-data; name="video"[\r\n\r\nabc\r\n--xx--\r\n'
    r = client.post("/edit", content=body, headers={"content-type": "multipart/form-data; boundary=xx"})
    assert r.status_code == 400


def _frames_fps(path: Path) -> tuple[int, float]:
    import cv2

    cap = cv2.VideoCapture(str(path))
    fps = cap.get(cv2.CAP_PROP_FPS)
    n = 0
    while cap.grab():
        n += 1
    cap.release()
    return n, fps


def test_edit_returns_same_length_mp4_with_audio_and_timings(client, sample_video, tmp_path):
    from serving.sample import ffmpeg_exe

    r = client.post("/edit", files=_video_file(sample_video), data={"emotion": "happy", "intensity": "1.2"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "video/mp4"
    out = tmp_path / "out.mp4"
    out.write_bytes(r.content)
    assert _frames_fps(out) == _frames_fps(sample_video)
    import subprocess

    probe = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-i", str(out)], capture_output=True, text=True
    ).stderr
    assert "Audio:" in probe
    timings = json.loads(r.headers["x-cmet-timings"])
    assert {"landmarks", "model", "render", "encode", "total_server"} <= set(timings)


def test_expressions_codes_per_frame(client, sample_video, tmp_path):
    feats = tmp_path / "t.npy"
    np.save(feats, np.random.default_rng(0).normal(size=(4, 16)).astype(np.float32))
    files = {
        **_video_file(sample_video),
        "target_features": ("t.npy", feats.read_bytes(), "application/octet-stream"),
    }
    r = client.post("/expressions", files=files, data={"intensity": "0"})
    assert r.status_code == 200, r.text
    body = r.json()
    n = _frames_fps(sample_video)[0]
    neutral, edited = np.asarray(body["neutral_codes"]), np.asarray(body["edited_codes"])
    assert neutral.shape == edited.shape == (n, 19) and len(body["au_names"]) == 19
    np.testing.assert_allclose(edited, neutral, atol=1e-4)  # intensity 0 = no edit
    r = client.post("/expressions", files=_video_file(sample_video), data={"blend": "happy:1"})
    moved = np.abs(np.asarray(r.json()["offsets"])).max()
    assert r.status_code == 200 and moved > 0


def test_portrait_plus_speech_gives_speech_length_video(client, sample_video, tmp_path):
    import cv2
    import soundfile as sf

    cap = cv2.VideoCapture(str(sample_video))
    ok, frame = cap.read()
    cap.release()
    assert ok
    img = tmp_path / "portrait.png"
    cv2.imwrite(str(img), frame)
    wav = tmp_path / "speech.wav"
    t = np.arange(int(0.6 * 16000)) / 16000
    sf.write(
        wav, (0.3 * np.sin(2 * np.pi * 180 * t) * (1 + np.sin(2 * np.pi * 3 * t))).astype(np.float32), 16000
    )
    files = {
        "portrait": ("p.png", img.read_bytes(), "image/png"),
        "driving_speech": ("s.wav", wav.read_bytes(), "audio/wav"),
    }
    r = client.post("/edit", files=files, data={"emotion": "sad"})
    assert r.status_code == 200, r.text
    out = tmp_path / "o.mp4"
    out.write_bytes(r.content)
    assert _frames_fps(out)[0] == 15  # 0.6 s at 25 fps
    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros(16000, np.float32), 16000)
    files["driving_speech"] = ("silent.wav", silent.read_bytes(), "audio/wav")
    r = client.post("/edit", files=files, data={"emotion": "sad"})
    assert r.status_code == 422 and "AudioError" in r.text


def test_task_result_file_is_stored():
    # BentoML stores a task's response; for a file (our mp4) its replay needs method/headers in scope
    import asyncio

    import _bentoml_impl.tasks.serde as task_serde
    from starlette.responses import FileResponse

    import serving.service  # noqa: F401  (applies serving.hardening)

    body = asyncio.run(task_serde._consume_response(FileResponse(__file__)))
    assert body == Path(__file__).read_bytes()


def test_edit_job_task_submit_status_get(client, sample_video):
    import time

    r = client.post("/edit_job/submit", files=_video_file(sample_video), data={"emotion": "happy"})
    assert r.status_code == 200, r.text
    task = r.json()["task_id"]
    for _ in range(120):
        st = client.get("/edit_job/status", params={"task_id": task}).json()["status"]
        if st not in ("in_progress", "pending"):
            break
        time.sleep(0.5)
    assert st == "completed"
    got = client.get("/edit_job/get", params={"task_id": task})
    assert got.status_code == 200 and got.content[4:8] == b"ftyp"
    r = client.post("/edit_job/submit", files=_video_file(sample_video), data={"emotion": "joy"})
    task = r.json()["task_id"]
    for _ in range(60):
        st = client.get("/edit_job/status", params={"task_id": task}).json()["status"]
        if st not in ("in_progress", "pending"):
            break
        time.sleep(0.5)
    assert st == "failed"
    assert "unknown emotion 'joy'" in client.get("/edit_job/get", params={"task_id": task}).text


def test_speech_target_and_neutral_reference(client, sample_video, tmp_path):
    import soundfile as sf

    wav = tmp_path / "s.wav"
    t = np.arange(16000) / 16000
    sf.write(wav, (0.3 * np.sin(2 * np.pi * 200 * t)).astype(np.float32), 16000)
    # the test model's features are 16-d: speech clips it cannot encode get a clear 400
    files = {**_video_file(sample_video), "target_speech": ("s.wav", wav.read_bytes(), "audio/wav")}
    r = client.post("/expressions", files=files)
    assert r.status_code == 400 and "target_features" in err(r)
    # a neutral reference (features) changes the prediction
    feats = tmp_path / "n.npy"
    np.save(feats, np.full((3, 16), 2.0, np.float32))
    base = client.post("/expressions", files=_video_file(sample_video), data={"emotion": "happy"}).json()
    files = {
        **_video_file(sample_video),
        "neutral_features": ("n.npy", feats.read_bytes(), "application/octet-stream"),
    }
    ref = client.post("/expressions", files=files, data={"emotion": "happy"}).json()
    assert np.abs(np.asarray(ref["offsets"]) - np.asarray(base["offsets"])).max() > 1e-4
