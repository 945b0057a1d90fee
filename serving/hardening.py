"""Two request-parsing gaps of BentoML 1.4.39 that a property-based run (schemathesis) turns into 5xx,
closed for this service:

* a *string* sent in a file field is taken as a URL and downloaded by the server (an SSRF path whose
  guard needs uvloop, absent here -> 500). This service takes uploaded files only: 400.
* a malformed multipart body (no boundary, bad part headers) escapes as KeyError/MultipartParseError
  -> 500. It is a bad request: 400.
* a task whose result is a file (our mp4) cannot be stored: BentoML replays the FileResponse into a
  scope without ``method``/``headers``, which starlette 1.x needs -> KeyError, and the task stays
  ``in_progress`` forever. The replay scope gets both.

:func:`apply` patches ``MultipartSerde`` once, in the serving process only (called by serving.service).
"""

from __future__ import annotations

_APPLIED = False


def apply() -> None:
    global _APPLIED
    if _APPLIED:
        return
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
            return await original_parse(self, request, cls)
        except (BentoMLException, ValidationError):
            raise
        except Exception as e:  # python-multipart / starlette parse errors
            raise BadInput(f"malformed multipart/form-data body: {type(e).__name__}: {e}") from e

    import _bentoml_impl.tasks.serde as task_serde

    async def consume_response(response) -> bytes:
        import asyncio
        import io

        buffer = io.BytesIO()
        scope = {"type": "http", "method": "GET", "headers": []}

        def receive():
            return asyncio.get_running_loop().create_future()  # never returns, as BentoML's

        async def send(message) -> None:
            if message.get("type") == "http.response.body":
                buffer.write(message.get("body", b""))

        await response(scope, receive, send)
        return buffer.getvalue()

    task_serde._consume_response = consume_response
    MultipartSerde.ensure_file = staticmethod(ensure_file)
    MultipartSerde.parse_request = parse_request
    _APPLIED = True
