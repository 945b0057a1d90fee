"""CmetError -> the 4xx the service answers (BentoML exceptions carry the HTTP status)."""

from __future__ import annotations

from http import HTTPStatus

from cmet.errors import AudioError, CmetError, FaceNotFoundError, UnknownEmotionError, VideoError
from serving.inputs import PayloadTooLargeError, UnsupportedMediaError


def status_for(exc: CmetError) -> HTTPStatus:
    """The HTTP status of a user-facing error: 413 too large, 415 wrong kind of file, 422 content that
    cannot be used (no face, silent/corrupt audio, undecodable video), 400 anything else."""
    if isinstance(exc, PayloadTooLargeError):
        return HTTPStatus.REQUEST_ENTITY_TOO_LARGE
    if isinstance(exc, UnsupportedMediaError):
        return HTTPStatus.UNSUPPORTED_MEDIA_TYPE
    if isinstance(exc, FaceNotFoundError | AudioError | VideoError):
        return HTTPStatus.UNPROCESSABLE_ENTITY
    if isinstance(exc, UnknownEmotionError):
        return HTTPStatus.BAD_REQUEST
    return HTTPStatus.BAD_REQUEST


def to_http(exc: CmetError):
    """A BentoML exception with the status and the message of ``exc`` (BentoML answers it as JSON)."""
    from bentoml.exceptions import InvalidArgument

    return InvalidArgument(f"{type(exc).__name__}: {exc}", error_code=status_for(exc))
