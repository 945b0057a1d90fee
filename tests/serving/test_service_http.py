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
    """The message of the one error body ``{"error": code, "message": text}`` (its shape checked)."""
    data = resp.json()
    assert set(data) == {"error", "message"}, data
    assert isinstance(data["error"], str) and data["error"].replace("_", "").isalpha()
    assert "/tmp/" not in data["message"] and "/work/" not in data["message"], data["message"]
    return data["message"]


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
    ids = (
        "use-sample",
        "use-portrait",
        "emotion",
        "blend-weights",
        "speech-files",
        "features-file",
        "intensity",
    )
    for element in (*ids, "api-key", "edited", "download", "plot"):
        assert f'id="{element}"' in r.text, element
    # the job states the service answers (not BentoML task names of another version)
    assert '"completed"' in r.text and '"failed"' in r.text and '"success"' not in r.text
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
        ({"blend": "happy:-1"}, 400, "[0, 100]"),
        ({"blend": "1e308,1e308"}, 400, "not emotion=weight"),
        ({"blend": "happy:1e308,sad:1e308"}, 400, "[0, 100]"),
        ({"emotion": "happy", "intensity": "nan"}, 400, "outside the accepted range"),
    ],
)
def test_edit_bad_targets_answer_400(client, sample_video, data, status, words):
    r = client.post("/edit", files=_video_file(sample_video), data=data)
    assert r.status_code == status, r.text
    assert words in err(r)


def test_not_a_video_is_415_whatever_its_declared_type(client, sample_video):
    r = client.post(
        "/edit",
        files={"video": ("x.mp4", b"not a video at all" * 50, "video/mp4")},
        data={"emotion": "happy"},
    )
    assert r.status_code == 415 and "expected video" in err(r) and r.json()["error"] == "unsupported_media"
    r = client.post(
        "/expressions", files={"video": ("x.txt", b"hello", "text/plain")}, data={"emotion": "happy"}
    )
    assert r.status_code == 415 and "expected video" in err(r)


def test_a_video_sent_as_octet_stream_without_a_name_is_accepted(client, sample_video):
    files = {"video": ("blob", sample_video.read_bytes(), "application/octet-stream")}
    r = client.post("/expressions", files=files, data={"emotion": "happy"})
    assert r.status_code == 200, r.text


@pytest.mark.parametrize(
    "blend",
    ['{"happy": 0.6, "sad": 0.4}', "happy:0.6,sad:0.4", "happy=0.6,sad=0.4", "happy=6,sad=4"],
)
def test_blend_in_every_spelling_gives_the_same_offsets(client, sample_video, blend):
    ref = client.post("/expressions", files=_video_file(sample_video), data={"blend": "happy:0.6,sad:0.4"})
    r = client.post("/expressions", files=_video_file(sample_video), data={"blend": blend})
    assert r.status_code == 200, r.text
    np.testing.assert_allclose(np.asarray(r.json()["offsets"]), np.asarray(ref.json()["offsets"]), atol=1e-6)
    assert r.json()["target"] == "happy:0.60+sad:0.40"


def test_features_are_checked_and_pickles_refused(client, sample_video, tmp_path):
    p = tmp_path / "evil.npy"
    np.save(p, np.array([{"x": 1}], dtype=object), allow_pickle=True)
    files = {
        **_video_file(sample_video),
        "target_features": ("evil.npy", p.read_bytes(), "application/octet-stream"),
    }
    r = client.post("/expressions", files=files)
    assert r.status_code == 400 and "(pickles) are not accepted" in err(r)
    np.save(p, np.ones((3, 5), np.float32))
    files["target_features"] = ("f.npy", p.read_bytes(), "application/octet-stream")
    r = client.post("/expressions", files=files)
    assert r.status_code == 400 and "speech dimension 16" in err(r)


def test_several_feature_files_are_stacked_not_dropped(client, sample_video):
    rng = np.random.default_rng(0)
    rows = rng.normal(0, 1, (3, 16)).astype(np.float32)

    def npy(a):
        import io

        b = io.BytesIO()
        np.save(b, a)
        return b.getvalue()

    one = [("target_features", ("all.npy", npy(rows), "application/octet-stream"))]
    many = [("target_features", (f"r{i}.npy", npy(rows[i]), "application/octet-stream")) for i in range(3)]
    video = list(_video_file(sample_video).items())
    r1 = client.post("/expressions", files=video + one)
    r3 = client.post("/expressions", files=video + many)
    assert r1.status_code == 200 and r3.status_code == 200, (r1.text, r3.text)
    np.testing.assert_allclose(np.asarray(r3.json()["offsets"]), np.asarray(r1.json()["offsets"]), atol=1e-6)
    last = client.post("/expressions", files=video + many[-1:])  # the last file alone differs: none dropped
    assert not np.allclose(np.asarray(last.json()["offsets"]), np.asarray(r3.json()["offsets"]), atol=1e-6)


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


def test_request_temp_folders_are_removed(client, sample_video):
    from bentoml._internal.context import request_tempdir_pool

    from serving.settings import serving_cfg, work_dir

    requests = work_dir(serving_cfg()) / "requests"
    for data in ({"emotion": "nope"}, {"emotion": "happy"}):
        client.post("/edit", files=_video_file(sample_video), data=data)
    # BentoML's folders are made under the service's work folder (not the system temp folder) and removed
    assert request_tempdir_pool._new.keywords["dir"] == str(requests)
    assert requests.is_dir() and list(requests.iterdir()) == [] and len(request_tempdir_pool._pool) == 0


def test_body_limit_middleware_answers_413():
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route
    from starlette.testclient import TestClient

    from serving.middleware import BodyLimitMiddleware

    async def echo(request):
        return PlainTextResponse(str(len(await request.body())))

    app = BodyLimitMiddleware(Starlette(routes=[Route("/x", echo, methods=["POST"])]), max_bytes=1000)
    with TestClient(app) as c:
        assert c.post("/x", content=b"a" * 999).text == "999"
        r = c.post("/x", content=b"a" * 5000)
        assert r.status_code == 413 and "over the limit" in err(r)

        def chunks():  # no Content-Length: counted while streaming
            for _ in range(10):
                yield b"b" * 500

        r = c.post("/x", content=chunks())
        assert r.status_code == 413


def test_chunked_body_is_spooled_to_disk_and_handed_on_whole(monkeypatch):
    """A chunked upload under the limit goes to a temporary file past SPOOL_IN_MEMORY (not a list of
    chunks in memory) and reaches the app byte for byte, in REPLAY_CHUNK pieces."""
    import asyncio
    import hashlib

    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route
    from starlette.testclient import TestClient

    import serving.middleware as mw

    monkeypatch.setattr(mw, "SPOOL_IN_MEMORY", 4096)
    monkeypatch.setattr(mw, "REPLAY_CHUNK", 1000)
    payload = bytes(range(256)) * 97  # 24832 bytes

    async def digest(request):
        return PlainTextResponse(hashlib.sha256(await request.body()).hexdigest())

    app = mw.BodyLimitMiddleware(Starlette(routes=[Route("/x", digest, methods=["POST"])]), max_bytes=30_000)
    with TestClient(app) as c:

        def chunks():
            for i in range(0, len(payload), 777):
                yield payload[i : i + 777]

        r = c.post("/x", content=chunks())
        assert r.status_code == 200 and r.text == hashlib.sha256(payload).hexdigest()

    msgs = iter(
        [
            {"type": "http.request", "body": payload[i : i + 5000], "more_body": i + 5000 < len(payload)}
            for i in range(0, len(payload), 5000)
        ]
    )

    async def receive():
        return next(msgs)

    spool = asyncio.run(mw._spool(receive, 30_000))
    assert spool._rolled  # on disk, not in memory
    spool.close()


def test_every_error_has_the_one_body(client, sample_video):
    r = client.post("/edit", files=_video_file(sample_video), data={"emotion": "joy"})
    assert r.json()["error"] == "unknown_emotion" and "'joy'" in err(r)
    r = client.post("/edit", files=_video_file(sample_video), data={"intensity": "abc", "emotion": "happy"})
    assert r.status_code == 400 and "intensity" in err(r)  # pydantic's validation error
    r = client.get("/nothing-here")
    assert r.status_code == 404 and r.json()["error"] == "not_found" and err(r)
    r = client.get("/edit")
    assert r.status_code in (404, 405) and err(r)
    r = client.get("/edit_job/status", params={"task_id": "nope"})
    assert r.status_code == 404 and r.json()["error"] == "not_found" and "no such job" in err(r)


def test_file_fields_never_fetch_urls(client):
    # BentoML would download a string sent in a file field; this service refuses it
    r = client.post(
        "/edit",
        data={"video": "http://127.0.0.1:1/x.mp4", "emotion": "happy"},
        files={"neutral_features": ("n.npy", b"x", "application/octet-stream")},
    )
    assert r.status_code == 400 and "not a string or URL" in err(r)


def test_unknown_or_misplaced_form_fields_are_named(client):
    """A misspelt field is refused, not dropped (it would edit at the default); a file sent under a
    text field's name or an unknown name too."""
    clip = ("c.mp4", b"\x00\x00\x00\x18ftypisom", "video/mp4")
    r = client.post("/edit", data={"emotion": "happy", "intesity": "2"}, files={"video": clip})
    assert r.status_code == 400 and "intesity" in err(r) and "intensity" in err(r)
    r = client.post(
        "/edit",
        data={"emotion": "happy"},
        files={"video": clip, "emotion_speech": ("a.wav", b"RIFF\x80\xff", "audio/wav")},
    )
    assert r.status_code == 400 and "emotion_speech" in err(r) and "target_speech" in err(r)
    r = client.post("/edit", files={"video": clip, "emotion": ("e.txt", b"happy", "text/plain")})
    assert r.status_code == 400 and "emotion: a text field" in err(r)


def test_malformed_multipart_is_400(client):
    r = client.post("/emotions", content=b"{}", headers={"content-type": "multipart/form-data"})
    assert r.status_code == 400 and "malformed multipart" in err(r)
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
    assert {"landmarks", "model", "render", "encode", "provenance", "total_server"} <= set(timings)
    from cmet.provenance import read_tags

    tags = read_tags(out)
    assert tags["cmet_edited"] == "true" and tags["cmet_target"] == "happy"
    assert tags["cmet_model"] == "cmet v7 (champion)" and tags["cmet_tool"].startswith("cmet-ops ")
    assert tags["cmet_intensity"] == "1.2" and tags["cmet_date"].startswith("20")


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
    # cmet.readout's nearest basic emotion (as the bench reads edits); this test bundle has no label offsets
    assert "nearest_basic" in r.json() and r.json()["nearest_basic"] is None


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
    assert r.status_code == 422 and r.json()["error"] == "bad_audio"
    assert err(r).startswith("driving_speech: ") and "tmp" not in err(r), err(r)  # the field, no temp path
    # RIFF/WAVE magic over garbage (no fmt chunk): sniffed as audio, fails to decode -> the same, named
    junk = bytes((i * 37 + 11) % 256 for i in range(4000))
    broken = b"RIFF" + (4 + len(junk)).to_bytes(4, "little") + b"WAVE" + junk
    files["driving_speech"] = ("broken.wav", broken, "audio/wav")
    r = client.post("/edit", files=files, data={"emotion": "sad"})
    assert r.status_code in (415, 422), r.status_code
    assert err(r).startswith("driving_speech: ") and "/tmp" not in err(r), err(r)


def _wait(client, task, seconds=120.0):
    import time

    t0 = time.monotonic()
    while time.monotonic() - t0 < seconds:
        st = client.get("/edit_job/status", params={"task_id": task}).json()
        if st["status"] != "in_progress":
            return st
        time.sleep(0.3)
    raise AssertionError(f"job {task} still in progress after {seconds} s")


def test_edit_job_submit_status_get_then_gone(client, sample_video):
    from serving.service import _STATE

    r = client.post("/edit_job/submit", files=_video_file(sample_video), data={"emotion": "happy"})
    assert r.status_code == 200, r.text
    task = r.json()["task_id"]
    assert r.json()["status"] == "in_progress"
    st = _wait(client, task)
    assert st["status"] == "completed" and st["timings_s"]["total_server"] > 0
    n = _frames_fps(sample_video)[0]
    assert (
        np.asarray(st["offsets"]).shape == (n, 19) and len(st["au_names"]) == 19 and st["target"] == "happy"
    )
    folder = _STATE["jobs"].root / task
    assert folder.is_dir() and [p.name for p in folder.iterdir()] == ["edited.mp4"]  # no upload kept
    got = client.get("/edit_job/get", params={"task_id": task})
    assert got.status_code == 200 and got.content[4:8] == b"ftyp"
    assert not folder.exists()  # deleted once fetched
    again = client.get("/edit_job/get", params={"task_id": task})
    assert again.status_code == 404 and again.json()["error"] == "not_found"


def test_edit_job_checks_everything_at_submission(client, sample_video, tmp_path):
    r = client.post("/edit_job/submit", files=_video_file(sample_video), data={"emotion": "joy"})
    assert r.status_code == 400 and r.json()["error"] == "unknown_emotion"
    r = client.post(
        "/edit_job/submit", files=_video_file(sample_video), data={"emotion": "happy", "intensity": "7"}
    )
    assert r.status_code == 400 and "intensity" in err(r)
    r = client.post(
        "/edit_job/submit", files={"video": ("v.mp4", b"junk" * 100, "video/mp4")}, data={"emotion": "happy"}
    )
    assert r.status_code == 415


def test_job_store_retention_and_limits(tmp_path, sample_video):
    import shutil
    import time

    from serving.errors import RateLimitedError
    from serving.jobs import JobNotFoundError, JobStore

    class Req:  # the two things the store needs of an EditRequest
        def __init__(self, p):
            self.inputs = {"video": p}

        def moved(self, paths):
            return paths

    def run(req, out):
        out.write_bytes(req["video"].read_bytes())
        return {}

    store = JobStore(tmp_path / "jobs", retention_s=0.2, max_pending=1)
    clip = tmp_path / "in.mp4"
    shutil.copy(sample_video, clip)
    job = store.submit(Req(clip), run)
    assert not clip.exists()  # moved into the job, not copied
    for _ in range(100):
        if store.get(job.id).status != "in_progress":
            break
        time.sleep(0.05)
    assert store.get(job.id).status == "completed" and not (job.folder / "inputs").exists()
    time.sleep(0.3)
    assert store.sweep() == 1 and not job.folder.exists()
    with pytest.raises(JobNotFoundError):
        store.get(job.id)

    def slow(req, out):
        time.sleep(0.5)
        return {}

    shutil.copy(sample_video, clip)
    store.submit(Req(clip), slow)
    shutil.copy(sample_video, clip)
    with pytest.raises(RateLimitedError, match="limit is 1"):
        store.submit(Req(clip), slow)
    store.close()
    assert not (tmp_path / "jobs").exists()


def test_speech_target_and_neutral_reference(client, sample_video, tmp_path):
    import soundfile as sf

    wav = tmp_path / "s.wav"
    t = np.arange(16000) / 16000
    sf.write(wav, (0.3 * np.sin(2 * np.pi * 200 * t)).astype(np.float32), 16000)
    # the test model's features are simulated: speech clips it cannot encode get a clear 400
    files = {**_video_file(sample_video), "target_speech": ("s.wav", wav.read_bytes(), "audio/wav")}
    r = client.post("/expressions", files=files)
    assert r.status_code == 400 and r.json()["error"] == "not_supported_by_model"
    assert "simulated" in err(r) and ".npy features of width 16" in err(r)
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
