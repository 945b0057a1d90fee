"""The service's errors and its one error body: ``{"error": <code>, "message": <text>}``.

A :class:`~cmet.errors.CmetError` raised while a request is checked or run becomes a BentoML exception
(:func:`to_http`) whose text starts with the error code in brackets; :func:`error_body` turns whatever
BentoML, starlette or a middleware answered into the one body shape, without server paths.
"""

from __future__ import annotations

import json
import re
from http import HTTPStatus

from cmet.errors import (
    AudioError,
    CmetError,
    ConfigError,
    DataError,
    FaceNotFoundError,
    ModelError,
    UnknownEmotionError,
    VideoError,
)


class PayloadTooLargeError(CmetError):
    """An upload, a video or a frame over the configured limit (HTTP 413)."""


class UnsupportedMediaError(DataError):
    """A file that is not of the kind the field asks for (HTTP 415)."""


class UnauthorizedError(CmetError):
    """No or a wrong API key (HTTP 401)."""


class RateLimitedError(CmetError):
    """Too many requests from one client (HTTP 429)."""


# most specific first: (class, status, code)
_TABLE: tuple[tuple[type, HTTPStatus, str], ...] = (
    (PayloadTooLargeError, HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "payload_too_large"),
    (UnsupportedMediaError, HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "unsupported_media"),
    (UnauthorizedError, HTTPStatus.UNAUTHORIZED, "unauthorized"),
    (RateLimitedError, HTTPStatus.TOO_MANY_REQUESTS, "rate_limited"),
    (FaceNotFoundError, HTTPStatus.UNPROCESSABLE_ENTITY, "face_not_found"),
    (AudioError, HTTPStatus.UNPROCESSABLE_ENTITY, "bad_audio"),
    (VideoError, HTTPStatus.UNPROCESSABLE_ENTITY, "bad_video"),
    (UnknownEmotionError, HTTPStatus.BAD_REQUEST, "unknown_emotion"),
    (ConfigError, HTTPStatus.BAD_REQUEST, "bad_parameter"),
    (ModelError, HTTPStatus.BAD_REQUEST, "not_supported_by_model"),
    (DataError, HTTPStatus.BAD_REQUEST, "bad_input"),
    (CmetError, HTTPStatus.BAD_REQUEST, "bad_request"),
)
_BY_STATUS = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    413: "payload_too_large",
    415: "unsupported_media",
    422: "unprocessable",
    429: "rate_limited",
    500: "internal_error",
    502: "bad_gateway",
    503: "unavailable",
    504: "timeout",
}
_CODE = re.compile(r"^\[([a-z_]+)\]\s*")
_PATH = re.compile(r"(?:[A-Za-z]:)?(?:/[\w.@+\-]+){2,}/?")


def classify(exc: CmetError) -> tuple[HTTPStatus, str]:
    """-> (HTTP status, error code) of a user-facing error."""
    for cls, status, code in _TABLE:
        if isinstance(exc, cls):
            return status, code
    return HTTPStatus.BAD_REQUEST, "bad_request"


def status_for(exc: CmetError) -> HTTPStatus:
    """413 too large, 415 wrong kind of file, 422 content that cannot be used (no face, silent or
    corrupt audio, undecodable video), 401/429 auth and rate limit, 400 anything else."""
    return classify(exc)[0]


def to_http(exc: CmetError):
    """A BentoML exception carrying the status, the code and the message of ``exc``."""
    from bentoml.exceptions import InvalidArgument

    status, code = classify(exc)
    return InvalidArgument(f"[{code}] {scrub(str(exc))}", error_code=status)


def scrub(text: str) -> str:
    """Server paths in a message -> their last component (``/tmp/x/y/face.mp4`` -> ``face.mp4``)."""
    return _PATH.sub(lambda m: m.group(0).rstrip("/").rsplit("/", 1)[-1], text)


def body(code: str, message: str) -> bytes:
    return json.dumps({"error": code, "message": scrub(message)}).encode()


def error_body(status: int, raw: bytes) -> bytes:
    """Whatever an error response held (BentoML's ``{"error": ..}`` or ``[{"error": ..}]``, pydantic's
    validation details, starlette's plain text) -> the one body. A 5xx says nothing of the server."""
    if status >= 500:
        default = "the server could not finish this request; it is logged" if status == 500 else ""
        return body(_BY_STATUS.get(status, "server_error"), default or HTTPStatus(status).phrase)
    message = _message(raw) or HTTPStatus(status).phrase
    m = _CODE.match(message)
    code = m.group(1) if m else _BY_STATUS.get(status, "bad_request")
    return body(code, message[m.end() :] if m else message)


def _message(raw: bytes) -> str:
    text = raw.decode("utf-8", errors="replace").strip()
    try:
        data = json.loads(text)
    except ValueError:
        return text[:500]
    if isinstance(data, list) and len(data) == 1:
        data = data[0]
    if not isinstance(data, dict):
        return text[:500]
    if "message" in data and isinstance(data.get("error"), str) and "detail" not in data:
        return f"[{data['error']}] {data['message']}"
    msg = str(data.get("error") or data.get("detail") or text)
    detail = data.get("detail")
    if isinstance(detail, list):  # pydantic: [{"loc": [...], "msg": ...}]
        parts = [
            f"{'.'.join(str(x) for x in d.get('loc', []))}: {d.get('msg')}"
            for d in detail
            if isinstance(d, dict)
        ]
        msg = f"{msg}: " + "; ".join(parts) if parts else msg
    return msg[:1000]
