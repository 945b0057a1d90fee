"""The BentoML 1.4 service: edit / expressions / emotions / version, a task for long edits, the demo page.

``bentoml serve serving.service:CmetService`` (or ``cmet bento serve`` for the latest build). The model
comes from the BentoML model store (``cmet:latest``, imported from the registry's champion by
``serving.build``); ``CMET_SERVE_MODEL_DIR`` points at a model folder instead (tests, development).

Health and readiness are BentoML's own (/healthz, /livez, /readyz); the OpenAPI schema is /docs.json.
Every request works in BentoML's per-request temporary folder, emptied when the response is sent.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import Annotated

import bentoml
from bentoml.validators import ContentType

from serving import hardening as _hardening
from serving.settings import service_config, serving_cfg

_CFG = serving_cfg()
_hardening.apply()  # no URL fetching for file fields, malformed multipart -> 400 (see serving.hardening)
STATIC_DIR = Path(__file__).resolve().parent / "static"


def _ui_app():
    """The demo page (static HTML + JS) and the bundled sample clip, mounted at /ui."""
    from starlette.applications import Starlette
    from starlette.responses import RedirectResponse
    from starlette.routing import Mount, Route
    from starlette.staticfiles import StaticFiles

    return Starlette(
        routes=[
            Route("/", lambda request: RedirectResponse(url="index.html")),
            Mount("/", StaticFiles(directory=str(STATIC_DIR), html=True, check_dir=False)),
        ]
    )


def _body_limit_middleware():
    from serving.inputs import BodyLimitMiddleware

    return BodyLimitMiddleware


def _openapi_middleware():
    from serving.openapi import OpenAPIMiddleware

    return OpenAPIMiddleware


VideoFile = Annotated[Path, ContentType("video/*")]
AudioFile = Annotated[Path, ContentType("audio/*")]
ImageFile = Annotated[Path, ContentType("image/*")]


@bentoml.asgi_app(_ui_app(), path="/ui", name="demo")
@bentoml.service(**service_config(_CFG))
class CmetService:
    """C-MET emotion editing of talking-face video, driven by speech."""

    bundle_model = bentoml.models.BentoModel(os.environ.get("CMET_BENTO_MODEL", f"{_CFG.model_name}:latest"))

    def __init__(self) -> None:
        from cmet.device import pick_device
        from cmet.env import configure_local_env
        from serving.engine import Engine
        from serving.inputs import Limits

        configure_local_env()
        self.cfg = _CFG
        self.limits = Limits.from_cfg(_CFG.limits)
        # the GPU when one is present, else the CPU: the same bento runs on both
        self.device = pick_device(os.environ.get("CMET_DEVICE", "auto"))
        model_dir = os.environ.get("CMET_SERVE_MODEL_DIR") or _bento_model_path() or self.bundle_model.path
        self.engine = Engine(model_dir, self.device, parallel=int(_CFG.get("parallel_edits", 1)))

    # ------------------------------------------------------------------ helpers
    def _workdir(self) -> Path:
        """A folder for this request's outputs: inside BentoML's per-request temp folder when serving
        (emptied after the response is sent), else a fresh temp folder (direct calls, tests)."""
        from bentoml._internal.context import request_temp_dir

        try:
            base = request_temp_dir()
        except LookupError:
            base = None
        return Path(tempfile.mkdtemp(prefix="cmet-", dir=base))

    def _prepare(
        self,
        *,
        video,
        emotion,
        blend,
        target_speech,
        target_features,
        neutral_speech,
        neutral_features,
        intensity,
        max_s,
    ):
        from serving.inputs import load_features, parse_target, probe_video

        lim = self.limits
        intensity = _intensity(intensity, lim)
        target = parse_target(
            emotion=emotion,
            blend=blend,
            target_speech=target_speech,
            target_features=target_features,
            known=self.engine.emotions,
            d_speech=self.engine.d_speech,
            limits=lim,
        )
        info = probe_video(video, lim, max_s=max_s) if video is not None else None
        neutral = None
        if neutral_features is not None:
            neutral = load_features(neutral_features, self.engine.d_speech, lim, field="neutral_features")
        elif neutral_speech:
            neutral = self.engine.speech_features(neutral_speech, field="neutral_speech")
        return target, info, neutral, intensity

    def _run_edit(self, max_s: float, ctx=None, **kw) -> Path:
        from cmet.errors import CmetError
        from serving.errors import to_http

        t0 = time.perf_counter()
        try:
            out, result = self._edit(max_s=max_s, **kw)
        except CmetError as e:
            raise to_http(e) from e
        if ctx is not None:  # where the time went, for clients and the load test
            timings = dict(getattr(result, "timings", None) or {})
            timings["total_server"] = time.perf_counter() - t0
            ctx.response.headers["x-cmet-timings"] = json.dumps(
                {k: round(float(v), 4) for k, v in timings.items()}
            )
        return out

    def _edit(
        self,
        *,
        video,
        portrait,
        driving_speech,
        emotion,
        blend,
        target_speech,
        target_features,
        neutral_speech,
        neutral_features,
        intensity,
        max_s,
    ) -> Path:
        from cmet.errors import DataError
        from serving.inputs import check_image, check_upload

        if (video is None) == (portrait is None):
            raise DataError("give either a video, or a portrait with driving_speech (not both, not neither)")
        if portrait is not None and driving_speech is None:
            raise DataError("a portrait needs driving_speech (the speech that moves the lips)")
        target, _, neutral, intensity = self._prepare(
            video=video,
            emotion=emotion,
            blend=blend,
            target_speech=target_speech,
            target_features=target_features,
            neutral_speech=neutral_speech,
            neutral_features=neutral_features,
            intensity=intensity,
            max_s=max_s,
        )
        out = self._workdir() / "edited.mp4"
        value = self.engine.target_value(target)
        if video is not None:
            result = self.engine.edit(video, value, neutral=neutral, intensity=intensity, out_path=out)
        else:
            check_image(portrait, self.limits)
            check_upload(driving_speech, "driving_speech", self.limits)
            result = self.engine.edit_portrait(
                portrait,
                driving_speech,
                value,
                neutral=neutral,
                intensity=intensity,
                out_path=out,
                max_s=max_s,
            )
        if not out.is_file() or out.stat().st_size == 0:
            raise DataError("the edit produced no video")
        return out, result

    # ------------------------------------------------------------------ the API
    @bentoml.api(route="/edit")
    def edit(
        self,
        video: VideoFile = None,
        emotion: str | None = None,
        blend: str | None = None,
        target_speech: list[AudioFile] = None,
        target_features: Path = None,
        neutral_speech: list[AudioFile] = None,
        neutral_features: Path = None,
        intensity: float = 1.0,
        portrait: ImageFile = None,
        driving_speech: AudioFile = None,
        ctx=None,
    ) -> Annotated[Path, ContentType("video/mp4")]:
        """Edit a neutral talking-face video (or a portrait + driving speech) toward a target emotion.

        The target is exactly one of: `emotion` (a name from /emotions), `blend` (JSON
        `{"happy": 0.6, "surprised": 0.4}` or `happy:0.6,surprised:0.4`), `target_speech` (audio clips
        that carry the emotion), `target_features` (.npy [k, D] speech features). Optional neutral
        reference (`neutral_speech` / `neutral_features`), `intensity`. Returns the edited mp4: same
        length, fps and audio. Clips longer than the sync limit go to /edit_job (a task).
        """
        return self._run_edit(
            self.limits.max_video_s,
            ctx=ctx,
            video=video,
            portrait=portrait,
            driving_speech=driving_speech,
            emotion=emotion,
            blend=blend,
            target_speech=target_speech,
            target_features=target_features,
            neutral_speech=neutral_speech,
            neutral_features=neutral_features,
            intensity=intensity,
        )

    @bentoml.task(route="/edit_job")
    def edit_job(
        self,
        video: VideoFile = None,
        emotion: str | None = None,
        blend: str | None = None,
        target_speech: list[AudioFile] = None,
        target_features: Path = None,
        neutral_speech: list[AudioFile] = None,
        neutral_features: Path = None,
        intensity: float = 1.0,
        portrait: ImageFile = None,
        driving_speech: AudioFile = None,
        ctx=None,
    ) -> Annotated[Path, ContentType("video/mp4")]:
        """The same edit as a task for long clips: POST /edit_job/submit -> task_id, then
        GET /edit_job/status?task_id=..., GET /edit_job/get?task_id=... (the mp4)."""
        return self._run_edit(
            self.limits.max_task_video_s,
            ctx=ctx,
            video=video,
            portrait=portrait,
            driving_speech=driving_speech,
            emotion=emotion,
            blend=blend,
            target_speech=target_speech,
            target_features=target_features,
            neutral_speech=neutral_speech,
            neutral_features=neutral_features,
            intensity=intensity,
        )

    @bentoml.api(route="/expressions")
    def expressions(
        self,
        video: VideoFile,
        emotion: str | None = None,
        blend: str | None = None,
        target_speech: list[AudioFile] = None,
        target_features: Path = None,
        neutral_speech: list[AudioFile] = None,
        neutral_features: Path = None,
        intensity: float = 1.0,
    ) -> dict:
        """The same inputs as /edit -> per-frame expression codes as JSON (no rendering): the video's
        own codes, the edited codes, the action-unit names, fps and per-stage timings."""
        from cmet.errors import CmetError
        from serving.engine import result_codes
        from serving.errors import to_http

        t0 = time.perf_counter()
        try:
            target, info, neutral, intensity = self._prepare(
                video=video,
                emotion=emotion,
                blend=blend,
                target_speech=target_speech,
                target_features=target_features,
                neutral_speech=neutral_speech,
                neutral_features=neutral_features,
                intensity=intensity,
                max_s=self.limits.max_video_s,
            )
            res = self.engine.edit(
                video,
                self.engine.target_value(target),
                neutral=neutral,
                intensity=intensity,
                out_path=None,
                render=False,
            )
        except CmetError as e:
            raise to_http(e) from e
        out = result_codes(res)
        out.setdefault("fps", info.fps)
        out["target"] = target.describe()
        out["intensity"] = intensity
        out["total_s"] = round(time.perf_counter() - t0, 4)
        return out

    @bentoml.api(route="/emotions")
    def emotions(self) -> dict:
        """The named emotions this model knows, with how many speech clips back each one."""
        counts = self.engine.emotion_counts()
        return {"emotions": [{"name": k, "clips": v} for k, v in counts.items()], "count": len(counts)}

    @bentoml.api(route="/version")
    def version(self) -> dict:
        """The model version (registry name, version, alias, run) and its figures."""
        from serving import __version__

        return {**self.engine.version(), "service": __version__, "limits": _limits_dict(self.limits)}


def _body_limit() -> int:
    return int(float(_CFG.limits.get("max_request_mb", 120)) * 2**20)


# a request body over the limit is refused (413) before BentoML parses it
CmetService.add_asgi_middleware(_body_limit_middleware(), max_bytes=_body_limit())
# /docs.json rewritten into valid OpenAPI 3.0 (see serving.openapi)
CmetService.add_asgi_middleware(_openapi_middleware(), service_name=str(_CFG.name))


def _bento_model_path() -> str | None:
    """Serving a built bento: exactly the model it was built with (not whatever is latest in the store)."""
    bento = CmetService.bento
    if bento is None:
        return None
    tag = bento.info.labels.get("model")
    return bentoml.models.get(tag).path if tag else None


def _intensity(x, lim):
    from serving.inputs import check_intensity

    return check_intensity(x, lim)


def _limits_dict(lim) -> dict:
    from dataclasses import asdict

    return asdict(lim)
