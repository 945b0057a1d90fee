"""BentoML 1.4's /docs.json mixes JSON-Schema-2020 idioms into an OpenAPI 3.0 document (``type: file``,
``anyOf [.., {type: null}]``, a ``content_type`` keyword), which OpenAPI validators reject. The service
answers /docs.json with the same spec rewritten into valid OpenAPI 3.0 (:func:`sanitize`), plus the
job routes served outside BentoML's API decorator (GET /edit_job/status and /edit_job/get)."""

from __future__ import annotations

import json
from collections.abc import Callable

_TASK_ID = [{"name": "task_id", "in": "query", "required": True, "schema": {"type": "string"}}]
_ERROR = {
    "description": "error",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
}
JOB_PATHS = {
    "/edit_job/status": {
        "get": {
            "operationId": "edit_job_status",
            "summary": "The state of a job: in_progress | completed | failed (with error and message)",
            "parameters": _TASK_ID,
            "responses": {
                "200": {
                    "description": "the job",
                    "content": {"application/json": {"schema": {"type": "object"}}},
                },
                "404": _ERROR,
            },
        }
    },
    "/edit_job/get": {
        "get": {
            "operationId": "edit_job_get",
            "summary": "The edited mp4 of a completed job (deleted from the server once fetched)",
            "parameters": _TASK_ID,
            "responses": {
                "200": {
                    "description": "the edited video",
                    "content": {"video/mp4": {"schema": {"type": "string", "format": "binary"}}},
                },
                "400": _ERROR,
                "404": _ERROR,
            },
        }
    },
}
ERROR_SCHEMA = {
    "type": "object",
    "required": ["error", "message"],
    "properties": {"error": {"type": "string"}, "message": {"type": "string"}},
}


def _fix(node):
    if isinstance(node, list):
        return [_fix(x) for x in node]
    if not isinstance(node, dict):
        return node
    node = {k: _fix(v) for k, v in node.items()}
    if node.get("type") == "file":
        node["type"] = "string"
        node["format"] = "binary"
    if "content_type" in node:
        node["x-content-type"] = node.pop("content_type")
    for key in ("anyOf", "oneOf"):
        alts = node.get(key)
        if isinstance(alts, list) and any(isinstance(a, dict) and a.get("type") == "null" for a in alts):
            rest = [a for a in alts if not (isinstance(a, dict) and a.get("type") == "null")]
            node.pop(key)
            node["nullable"] = True
            if len(rest) == 1:
                node.update({k: v for k, v in rest[0].items() if k not in node or k == "type"})
            else:
                node[key] = rest
    if node.get("default", 0) is None and "type" in node:
        node["nullable"] = True
    if node.get("type") == "null":
        node.pop("type")
        node["nullable"] = True
    return node


def sanitize(spec: dict) -> dict:
    """-> a valid OpenAPI 3.0 document with the same paths and operations."""
    out = json.loads(json.dumps(spec, default=str))  # int keys (status codes) -> str, as served
    out["components"] = _fix(out.get("components") or {})
    out["components"].setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    if "paths" in out:
        out["paths"] = _fix(out["paths"])
        seen: set[str] = set()
        out["paths"].update(JOB_PATHS)
        for path, ops in out["paths"].items():  # BentoML reuses the retry id for /<task>/cancel
            for method, op in ops.items():
                if isinstance(op, dict) and "operationId" in op:
                    oid = op["operationId"]
                    if oid in seen:
                        op["operationId"] = oid = f"{oid}__{method}_{path.strip('/').replace('/', '_')}"
                    seen.add(oid)
    return out


class OpenAPIMiddleware:
    """Answers GET /docs.json with the sanitized ``spec()`` (the service's own OpenAPI dict)."""

    def __init__(self, app, spec: Callable[[], dict], path: str = "/docs.json") -> None:
        self.app = app
        self.path = path
        self.spec = spec
        self._body: bytes | None = None

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope.get("path") != self.path or scope.get("method") != "GET":
            return await self.app(scope, receive, send)
        if self._body is None:
            self._body = json.dumps(sanitize(self.spec())).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(self._body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": self._body})
