"""BentoML 1.4's /docs.json mixes JSON-Schema-2020 idioms into an OpenAPI 3.0 document (``type: file``,
``anyOf [.., {type: null}]``, a ``content_type`` keyword), which OpenAPI validators reject. The service
answers /docs.json with the same spec rewritten into valid OpenAPI 3.0 (:func:`sanitize`)."""

from __future__ import annotations

import json


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
    if "components" in out:
        out["components"] = _fix(out["components"])
    if "paths" in out:
        out["paths"] = _fix(out["paths"])
        seen: set[str] = set()
        for path, ops in out["paths"].items():  # BentoML reuses the retry id for /<task>/cancel
            for method, op in ops.items():
                if isinstance(op, dict) and "operationId" in op:
                    oid = op["operationId"]
                    if oid in seen:
                        op["operationId"] = oid = f"{oid}__{method}_{path.strip('/').replace('/', '_')}"
                    seen.add(oid)
    return out


class OpenAPIMiddleware:
    """Answers GET /docs.json with the sanitized spec of ``service``."""

    def __init__(self, app, service_name: str, path: str = "/docs.json") -> None:
        self.app = app
        self.path = path
        self.service_name = service_name
        self._body: bytes | None = None

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope.get("path") != self.path or scope.get("method") != "GET":
            return await self.app(scope, receive, send)
        if self._body is None:
            from serving.service import CmetService

            self._body = json.dumps(sanitize(CmetService.openapi_spec.asdict())).encode()
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
