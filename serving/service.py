"""The BentoML 1.4 service: edit / expressions / emotions / version, jobs for long edits, the demo page.

``bentoml serve serving.service:CmetService`` (or ``cmet bento serve`` for the latest build). The model
comes from the BentoML model store (``cmet:latest``, imported from the registry's champion by
``serving.build``); ``CMET_SERVE_MODEL_DIR`` points at a model folder instead (tests, development).

Every edit route builds one :class:`serving.request.EditRequest` (all inputs checked before work) and
hands it to the engine. Long clips go through the job store (POST /edit_job/submit, GET
/edit_job/status, GET /edit_job/get). Health and readiness are BentoML's own (/healthz, /livez,
/readyz); the OpenAPI schema is /docs.json. Every error answer is ``{"error": code, "message": text}``.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Annotated

import bentoml
from bentoml.validators import ContentType

from serving import hardening as _hardening
from serving.request import EditFields, ExpressionFields
from serving.settings import service_config, serving_cfg

_CFG = serving_cfg()
_hardening.apply()  # no URL fetching for file fields, malformed multipart -> 400 (see serving.hardening)
STATIC_DIR = Path(__file__).resolve().parent / "static"
_STATE: dict = {}  # the running service instance's job store, for the mounted job routes


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


def _jobs_app():
    """GET /edit_job/status?task_id= and GET /edit_job/get?task_id= (the mp4, deleted once sent)."""
    from starlette.applications import Starlette
    from starlette.background import BackgroundTask
    from starlette.responses import FileResponse, JSONResponse
    from starlette.routing import Route

    from cmet.errors import CmetError
    from serving.errors import classify

    def answer(request, fetch: bool):
        store = _STATE.get("jobs")
        if store is None:
            return JSONResponse(
                {"error": "unavailable", "message": "the service is starting"}, status_code=503
            )
        try:
            task_id = request.query_params.get("task_id") or ""
            if not fetch:
                return JSONResponse(store.get(task_id).to_json())
            path = store.take(task_id)
        except CmetError as e:
            status = 404 if type(e).__name__ == "JobNotFoundError" else int(classify(e)[0])
            code = "not_found" if status == 404 else classify(e)[1]
            return JSONResponse({"error": code, "message": str(e)}, status_code=status)
        return FileResponse(
            path, media_type="video/mp4", filename="edited.mp4", background=BackgroundTask(store.delete, path)
        )

    return Starlette(
        routes=[
            Route("/status", lambda r: answer(r, False), methods=["GET"]),
            Route("/get", lambda r: answer(r, True), methods=["GET"]),
        ]
    )


@bentoml.asgi_app(_ui_app(), path="/ui", name="demo")
@bentoml.asgi_app(_jobs_app(), path="/edit_job", name="jobs")
@bentoml.service(**service_config(_CFG))
class CmetService:
    """C-MET emotion editing of talking-face video, driven by speech."""

    # the model this service (and a bento built of it) depends on in the BentoML store; serving a bundle
    # folder (CMET_SERVE_MODEL_DIR: `make serve`, tests) needs none, so none is declared then (an
    # empty store would otherwise stop `bentoml serve` before it starts)
    bundle_model = (
        None
        if os.environ.get("CMET_SERVE_MODEL_DIR")
        else bentoml.models.BentoModel(os.environ.get("CMET_BENTO_MODEL", f"{_CFG.model_name}:latest"))
    )

    def __init__(self) -> None:
        from cmet.device import pick_device
        from cmet.env import configure_local_env
        from serving.engine import Engine
        from serving.inputs import Limits
        from serving.jobs import JobStore
        from serving.settings import claim_work_dir

        configure_local_env()
        self.cfg = _CFG
        self.limits = Limits.from_cfg(_CFG.limits)
        # the GPU when one is present, else the CPU: the same bento runs on both
        self.device = pick_device(os.environ.get("CMET_DEVICE", "auto"))
        model_dir = (
            os.environ.get("CMET_SERVE_MODEL_DIR")
            or _bento_model_path()
            or (self.bundle_model.path if self.bundle_model is not None else None)
        )
        if not model_dir:
            from cmet.errors import ModelError

            raise ModelError(
                "no model to serve: set CMET_SERVE_MODEL_DIR to a bundle folder, or serve a built bento"
            )
        self.engine = Engine(model_dir, self.device, parallel=int(_CFG.parallel_edits))
        work = claim_work_dir(_CFG)
        _ensure_sample()
        _hardening.request_temp_under(work / "requests")
        self.jobs = JobStore(work / "jobs", float(_CFG.jobs.retention_s), int(_CFG.jobs.max_pending))
        _STATE["jobs"] = self.jobs

    # ------------------------------------------------------------------ helpers
    def _request(self, fields: ExpressionFields, max_s: float, render: bool = True):
        """The route's fields -> a checked EditRequest (any CmetError -> its 4xx)."""
        from cmet.errors import CmetError
        from serving.errors import to_http
        from serving.request import build_request

        try:
            return build_request(fields, self.engine, self.limits, max_s=max_s, render=render)
        except CmetError as e:
            raise to_http(e) from e

    def _render(self, req, out: Path):
        """Run a checked edit into ``out`` (mp4 with provenance tags) -> (EditResult, per-stage timings)."""
        from cmet.errors import DataError
        from cmet.provenance import stamp, tags
        from serving import __version__

        t0 = time.perf_counter()
        result = self.engine.edit(req, out)
        if not out.is_file() or out.stat().st_size == 0:
            raise DataError("the edit produced no video")
        t1 = time.perf_counter()
        meta = tags(self.engine.version(), req.description, req.intensity, __version__, timeline=req.timeline)
        stamp(out, meta, mark=_CFG.provenance.visible_mark)
        timings = dict(getattr(result, "timings", None) or {})
        timings["provenance"] = time.perf_counter() - t1
        timings["total_server"] = time.perf_counter() - t0
        return result, {k: round(float(v), 4) for k, v in timings.items()}

    def _run_job(self, req, out: Path) -> dict:
        """A job's edit -> what its completed status carries: timings, target, fps and the per-frame AU
        offsets (the demo page plots them)."""
        import numpy as np

        from cmet.face.facs import AU_NAMES

        result, timings = self._render(req, out)
        offsets = np.round(np.asarray(result.offsets, np.float64), 4).tolist()
        return {
            "timings_s": timings,
            "target": req.description,
            "intensity": req.intensity,
            "fps": float(result.fps),
            "au_names": list(AU_NAMES),
            "offsets": offsets,
        }

    def _outdir(self) -> Path:
        """A folder for this request's output inside BentoML's per-request temp folder (removed once the
        response is sent)."""
        import tempfile

        from bentoml._internal.context import request_temp_dir

        return Path(tempfile.mkdtemp(prefix="out-", dir=request_temp_dir()))

    # ------------------------------------------------------------------ the API
    @bentoml.api(route="/edit", input_spec=EditFields)
    def edit(self, ctx=None, **fields) -> Annotated[Path, ContentType("video/mp4")]:
        """Edit a neutral talking-face video (or a portrait + driving speech) toward a target emotion.

        The target is exactly one of: `emotion` (a name from /emotions), `blend` (`happy=0.6,surprised=0.4`,
        `happy:0.6,...` or JSON `{"happy": 0.6, "surprised": 0.4}`; weights in [0, 100], normalised to
        sum 1), `target_speech` (audio clips that carry the emotion), `target_features` (.npy [k, D]
        speech features). Optional neutral reference (`neutral_speech` / `neutral_features`) and
        `intensity`. Uploads are recognised by their bytes (mp4/mov/webm/mkv/avi, wav/flac/mp3/ogg,
        png/jpeg, npy). Returns the edited mp4 (same length, fps and audio) with provenance tags.
        Clips longer than the sync limit go to /edit_job/submit.
        """
        from cmet.errors import CmetError
        from serving.errors import to_http

        req = self._request(EditFields.model_construct(**fields), self.limits.max_video_s)
        out = self._outdir() / "edited.mp4"
        try:
            _, timings = self._render(req, out)
        except CmetError as e:
            raise to_http(e) from e
        if ctx is not None:  # where the time went, for clients and the load test
            ctx.response.headers["x-cmet-timings"] = json.dumps(timings)
        return out

    @bentoml.api(route="/edit_job/submit", input_spec=EditFields)
    def edit_job(self, **fields) -> dict:
        """The same edit as a job, for clips up to the task limit. Every input is checked here, as by
        /edit; then GET /edit_job/status?task_id=... (in_progress | completed | failed) and GET
        /edit_job/get?task_id=... (the mp4, deleted from the server once fetched)."""
        from cmet.errors import CmetError
        from serving.errors import to_http

        req = self._request(EditFields.model_construct(**fields), self.limits.max_task_video_s)
        try:
            return self.jobs.submit(req, self._run_job).to_json()
        except CmetError as e:
            raise to_http(e) from e

    @bentoml.api(route="/expressions", input_spec=ExpressionFields)
    def expressions(self, **fields) -> dict:
        """The same inputs as /edit -> per-frame expression codes as JSON (no rendering): the video's
        own codes, the offsets, the edited codes, the action-unit names, fps and per-stage timings."""
        from cmet.errors import CmetError
        from serving.engine import result_codes
        from serving.errors import to_http

        t0 = time.perf_counter()
        req = self._request(ExpressionFields.model_construct(**fields), self.limits.max_video_s, render=False)
        try:
            res = self.engine.edit(req, None)
        except CmetError as e:
            raise to_http(e) from e
        out = result_codes(res)
        out["nearest_basic"] = self.engine.nearest_basic(getattr(res, "offsets", None))
        out.setdefault("fps", req.video.fps)
        out.update(
            target=req.description, intensity=req.intensity, total_s=round(time.perf_counter() - t0, 4)
        )
        return out

    @bentoml.api(route="/emotions")
    def emotions(self) -> dict:
        """The named emotions this model knows, with how many speech clips back each one."""
        counts = self.engine.emotion_counts()
        return {"emotions": [{"name": k, "clips": v} for k, v in counts.items()], "count": len(counts)}

    @bentoml.api(route="/version")
    def version(self) -> dict:
        """The model version (registry name, version, alias, run), its figures, the limits."""
        from dataclasses import asdict

        from serving import __version__

        return {**self.engine.version(), "service": __version__, "limits": asdict(self.limits)}


def _ensure_sample() -> None:
    """The demo page's sample clip (written by a bento build; made here when serving the source tree)."""
    from cmet.config import compose
    from serving.sample import ensure_sample

    if (STATIC_DIR / "sample.mp4").is_file():
        return
    release = Path(str(compose([]).paths.release_dir))
    ensure_sample(
        STATIC_DIR, release if release.is_dir() else None, float(_CFG.sample.seconds), int(_CFG.sample.size)
    )


def _bento_model_path() -> str | None:
    """Serving a built bento: exactly the model it was built with (not whatever is latest in the store)."""
    bento = CmetService.bento
    if bento is None:
        return None
    tag = bento.info.labels.get("model")
    return bentoml.models.get(tag).path if tag else None


def _add_middleware() -> None:
    """Outermost first: the one error body, CORS, API key + rate limit, body limit, the OpenAPI fix."""
    from starlette.middleware.cors import CORSMiddleware

    from serving.middleware import AccessMiddleware, BodyLimitMiddleware, ErrorBodyMiddleware, cors_options
    from serving.openapi import OpenAPIMiddleware

    CmetService.add_asgi_middleware(ErrorBodyMiddleware)
    if (cors := cors_options(_CFG.cors)) is not None:
        CmetService.add_asgi_middleware(CORSMiddleware, **cors)
    CmetService.add_asgi_middleware(AccessMiddleware, auth=_CFG.auth, rate_limit=_CFG.rate_limit)
    CmetService.add_asgi_middleware(
        BodyLimitMiddleware, max_bytes=int(float(_CFG.limits.max_request_mb) * 2**20)
    )
    CmetService.add_asgi_middleware(OpenAPIMiddleware, spec=lambda: CmetService.openapi_spec.asdict())


_add_middleware()
