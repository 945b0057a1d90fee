"""Request-parsing gaps of BentoML 1.4.39 that a property-based run (schemathesis) turns into 5xx,
closed for this service:

* a *string* sent in a file field is taken as a URL and downloaded by the server (an SSRF path whose
  guard needs uvloop, absent here -> 500). This service takes uploaded files only: 400.
* a malformed multipart body (no boundary, bad part headers) escapes as KeyError/MultipartParseError
  -> 500. It is a bad request: 400.
* an unknown form field is dropped silently (a misspelt ``intesity`` edits at the default) and an
  unknown *file* part fails as a UnicodeDecodeError: both are a 400 naming the part and the route's
  fields (:func:`check_fields`).

Operator-side fixes, also applied by :func:`apply`:

* a 4xx is logged as one line (BentoML logs every refused request with its full traceback);
* BentoML's own 429 (max_concurrency) and 504 (timeout) answers get the service's one error body;
* the per-request temporary folders live under the service's work folder and are removed after each
  response (BentoML keeps a pool of emptied folders in the system temp folder).

:func:`apply` patches once, in the serving process only (called by serving.service).
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from functools import partial
from pathlib import Path

_APPLIED = False


class OneLineClientErrors(logging.Filter):
    """A log record of a refused request (a 4xx BentoML exception or a validation error) loses its
    traceback and becomes one line: ``400 /edit: [unknown_emotion] ...``."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if exc is None:
            return True
        status = _client_status(exc)
        if status is None:
            return True
        path = record.args[0] if isinstance(record.args, tuple) and record.args else "?"
        record.msg, record.args = "%s %s: %s", (status, path, str(exc).splitlines()[0][:300])
        record.exc_info, record.exc_text, record.levelno, record.levelname = None, None, logging.INFO, "INFO"
        return True


def _client_status(exc: BaseException) -> int | None:
    from bentoml.exceptions import BentoMLException
    from pydantic import ValidationError

    if isinstance(exc, ValidationError):
        return 400
    if isinstance(exc, BentoMLException) and int(exc.error_code) < 500:
        return int(exc.error_code)
    return None


def request_temp_under(root: Path) -> None:
    """BentoML's per-request temp folders: created under ``root``, removed (not pooled) after use."""
    from bentoml._internal import context

    root.mkdir(parents=True, exist_ok=True)
    pool = context.request_tempdir_pool
    pool._new = partial(tempfile.mkdtemp, prefix="req-", dir=str(root))
    pool.release = lambda folder: shutil.rmtree(folder, ignore_errors=True)


def one_body_response(content, status_code: int):
    """What BentoML's traffic middleware (429 too many requests, 504 timeout; outside the service's own
    middleware) answers, in the service's one error body."""
    import json

    from starlette.responses import Response

    from serving.errors import error_body

    return Response(
        error_body(status_code, json.dumps(content).encode()), status_code, media_type="application/json"
    )


def check_fields(form, cls) -> None:
    """Every part of the multipart ``form`` is a field of the route's input spec ``cls``, files only in
    its file fields -> else BadInput naming the part and the fields the route takes (BentoML
    drops an unknown text field silently, so a misspelt ``intesity`` would edit at the default, and
    fails on an unknown file part with a UnicodeDecodeError)."""
    from bentoml.exceptions import BadInput
    from starlette.datastructures import UploadFile

    known = list(cls.model_fields)
    files = [k for k in known if k in cls.multipart_fields]
    unknown = sorted({k for k in form.keys() if k not in cls.model_fields})
    if unknown:
        raise BadInput(
            f"unknown form field(s) {unknown}; this route takes the files {files} and the fields "
            f"{[k for k in known if k not in files]}"
        )
    for k in form.keys():
        if k not in cls.multipart_fields and any(isinstance(v, UploadFile) for v in form.getlist(k)):
            raise BadInput(f"{k}: a text field, sent as a file (the file fields are {files})")


def apply() -> None:
    global _APPLIED
    if _APPLIED:
        return
    from bentoml._internal.server.http import traffic

    logging.getLogger("bentoml._internal.server.http_app").addFilter(OneLineClientErrors())
    traffic.JSONResponse = one_body_response
    from _bentoml_impl.serde import MultipartSerde
    from bentoml.exceptions import BadInput, BentoMLException
    from pydantic import ValidationError
    from starlette.datastructures import UploadFile

    original_parse = MultipartSerde.parse_request

    async def ensure_file(obj):
        if isinstance(obj, UploadFile):
            return obj
        raise BadInput(
            "file fields take an uploaded file (multipart part with a filename), not a string or URL"
        )

    async def parse_request(self, request, cls):
        try:
            form = await request.form()  # parsed once: starlette keeps it for BentoML's own call
            check_fields(form, cls)
            return await original_parse(self, request, cls)
        except (BentoMLException, ValidationError):
            raise
        except Exception as e:  # python-multipart / starlette parse errors
            raise BadInput(f"malformed multipart/form-data body: {type(e).__name__}: {e}") from e

    MultipartSerde.ensure_file = staticmethod(ensure_file)
    MultipartSerde.parse_request = parse_request
    _APPLIED = True
