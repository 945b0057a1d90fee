"""ASGI middleware of the service, outermost first: the one error body, CORS, API key + rate limit,
the request-body limit.

* :class:`ErrorBodyMiddleware` rewrites every 4xx/5xx answer (BentoML's, starlette's, ours) into
  ``{"error": <code>, "message": <text>}`` without server paths (serving.errors.error_body).
* :class:`AccessMiddleware`: with ``auth.enabled`` every route but the health checks, the demo page and
  the schema needs ``Authorization: Bearer <key>`` or ``X-API-Key: <key>`` (``/metrics`` included);
  without it only loopback clients are answered (403), unless ``auth.remote_without_key``; each client
  (its key, else its address) gets ``requests_per_minute`` with a ``burst`` (429 past it).
* :class:`BodyLimitMiddleware`: a body over ``max_bytes`` is refused (413) before it is parsed; a
  chunked body is spooled to disk while it is counted.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import threading
import time
from pathlib import Path

from cmet.errors import ConfigError
from serving.errors import body, error_body

HEALTH = ("/healthz", "/livez", "/readyz")
PUBLIC = (*HEALTH, "/ui", "/docs.json", "/docs", "/favicon.ico")


async def _send_error(send, status: int, code: str, message: str, headers=()) -> None:
    data = body(code, message)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(data)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": data})


class ErrorBodyMiddleware:
    """Every answer with status >= 400 gets the one error body (the original body is read, parsed for
    its message, and replaced; successful answers stream through untouched)."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        state: dict = {"start": None, "chunks": []}

        async def wrapped(message):
            if message["type"] == "http.response.start":
                if message["status"] < 400:
                    return await send(message)
                state["start"] = message
                return None
            if state["start"] is None:
                return await send(message)
            state["chunks"].append(message.get("body", b""))
            if message.get("more_body", False):
                return None
            start = state["start"]
            data = error_body(start["status"], b"".join(state["chunks"]))
            keep = [
                (k, v)
                for k, v in start.get("headers", [])
                if k.lower() not in (b"content-length", b"content-type")
            ]
            headers = [
                *keep,
                (b"content-type", b"application/json"),
                (b"content-length", str(len(data)).encode()),
            ]
            await send({"type": "http.response.start", "status": start["status"], "headers": headers})
            await send({"type": "http.response.body", "body": data})

        await self.app(scope, receive, wrapped)


def api_keys(auth) -> tuple[bytes, ...]:
    """The accepted keys: the env var ``auth.key_env`` and/or the file ``auth.key_file`` (one key a
    line). Auth on with no key -> ConfigError (the service does not start open by mistake)."""
    keys: list[str] = []
    if auth.get("key_env") and os.environ.get(str(auth.key_env)):
        keys.append(os.environ[str(auth.key_env)])
    if auth.get("key_file"):
        path = Path(str(auth.key_file)).expanduser()
        if not path.is_file():
            raise ConfigError(f"serving.auth.key_file: {path} does not exist")
        keys += [line.strip() for line in path.read_text().splitlines() if line.strip()]
    keys = [k for k in keys if k]
    if not keys:
        raise ConfigError(
            f"serving.auth.enabled is true but no API key is set: export {auth.get('key_env')} or point "
            "serving.auth.key_file at a file holding the key"
        )
    if any(len(k) < 16 for k in keys):
        raise ConfigError("serving.auth: API keys must be at least 16 characters")
    return tuple(hashlib.sha256(k.encode()).digest() for k in keys)


class RateLimiter:
    """A token bucket per client: ``per_minute`` tokens a minute, at most ``burst`` saved."""

    def __init__(self, per_minute: float, burst: int, max_clients: int = 10_000) -> None:
        self.rate = float(per_minute) / 60.0
        self.burst = float(max(1, burst))
        self.max_clients = max_clients
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, client: str, now: float | None = None) -> float:
        """-> 0 when the request may go, else the seconds until it may."""
        if self.rate <= 0:
            return 0.0
        now = time.monotonic() if now is None else now
        with self._lock:
            tokens, last = self._buckets.get(client, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            if len(self._buckets) >= self.max_clients and client not in self._buckets:
                self._buckets.clear()  # bounded memory; a flood of addresses resets the buckets
            if tokens >= 1.0:
                self._buckets[client] = (tokens - 1.0, now)
                return 0.0
            self._buckets[client] = (tokens, now)
            return (1.0 - tokens) / self.rate


class AccessMiddleware:
    """API-key check (when ``auth.enabled``), loopback-only without a key (unless
    ``auth.remote_without_key``), and a per-client rate limit (``rate_limit``)."""

    def __init__(self, app, auth, rate_limit) -> None:
        self.app = app
        self.keys = api_keys(auth) if auth.get("enabled") else ()
        self.remote_ok = bool(auth.get("remote_without_key"))
        self.public = tuple(auth.get("public") or PUBLIC)
        self.limiter = RateLimiter(float(rate_limit.requests_per_minute), int(rate_limit.burst))

    def _key(self, scope) -> bytes | None:
        headers = dict(scope.get("headers") or [])
        auth = headers.get(b"authorization", b"")
        if auth[:7].lower() == b"bearer ":
            return auth[7:].strip()
        return headers.get(b"x-api-key")

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope.get("method") == "OPTIONS":
            return await self.app(scope, receive, send)
        path = scope.get("path", "")
        if path in HEALTH:
            return await self.app(scope, receive, send)
        client = (scope.get("client") or ("?", 0))[0]
        if not self.keys and not self.remote_ok and not _loopback(client):
            return await _send_error(
                send,
                403,
                "forbidden",
                "without an API key this service answers loopback clients only; "
                "turn on serving.auth (with a key) to serve the network",
            )
        if self.keys and not _under(path, self.public):
            given = self._key(scope)
            digest = hashlib.sha256(given).digest() if given else b""
            if not any(hmac.compare_digest(digest, k) for k in self.keys):
                return await _send_error(
                    send,
                    401,
                    "unauthorized",
                    "an API key is needed: Authorization: Bearer <key> or X-API-Key",
                    headers=[(b"www-authenticate", b"Bearer")],
                )
            client = "key:" + digest.hex()[:16]
        wait = self.limiter.take(client)
        if wait > 0:
            return await _send_error(
                send,
                429,
                "rate_limited",
                f"too many requests from this client; retry in {wait:.1f} s",
                headers=[(b"retry-after", str(int(wait) + 1).encode())],
            )
        return await self.app(scope, receive, send)


def _loopback(host: str) -> bool:
    import ipaddress

    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _under(path: str, prefixes) -> bool:
    return any(path == p or path.startswith(p.rstrip("/") + "/") for p in prefixes)


class BodyLimitMiddleware:
    """A request body over ``max_bytes`` gets 413 before it is parsed (on its Content-Length, or
    while a chunked body streams in). A chunked body is spooled to disk as it is counted (memory
    stays bounded by :data:`SPOOL_IN_MEMORY`); a body with a Content-Length streams on to the
    parser, which spools each uploaded file to disk itself."""

    def __init__(self, app, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = int(max_bytes)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope.get("headers") or []).get(b"content-length")
        limit = f"{self.max_bytes / 2**20:.0f} MB"
        if length is not None:
            try:
                n = int(length)
            except ValueError:
                return await _send_error(send, 400, "bad_request", "invalid Content-Length header")
            if n > self.max_bytes:
                return await _send_error(
                    send,
                    413,
                    "payload_too_large",
                    f"request body of {n / 2**20:.1f} MB is over the limit of {limit}",
                )
        if length is not None or scope.get("method") in ("GET", "HEAD", "OPTIONS"):
            return await self.app(scope, receive, send)
        # no Content-Length (chunked): spooled to disk while it is counted, then handed on from there
        spool = await _spool(receive, self.max_bytes)
        if spool is None:  # the client went away
            return None
        if spool is False:
            return await _send_error(
                send, 413, "payload_too_large", f"request body over the limit of {limit}"
            )
        try:
            await self.app(scope, _replay(spool, receive), send)
        finally:
            spool.close()


#: a chunked body stays in memory up to this size, then goes to a temporary file
SPOOL_IN_MEMORY = 1 << 20
#: the size of the messages a spooled body is handed on in
REPLAY_CHUNK = 1 << 16


async def _spool(receive, max_bytes: int):
    """Read a request body into a SpooledTemporaryFile (memory up to :data:`SPOOL_IN_MEMORY`, disk
    past it), counting: -> the file rewound, False once it passes ``max_bytes`` (the rest is not
    read), None when the client disconnects."""
    import tempfile

    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY, prefix="cmet-body-")
    seen = 0
    while True:
        msg = await receive()
        if msg["type"] == "http.disconnect":
            spool.close()
            return None
        chunk = msg.get("body", b"")
        seen += len(chunk)
        if seen > max_bytes:
            spool.close()
            return False
        spool.write(chunk)
        if not msg.get("more_body", False):
            spool.seek(0)
            return spool


def _replay(spool, receive):
    """An ASGI ``receive`` that hands on the spooled body in :data:`REPLAY_CHUNK` pieces, then
    defers to the real ``receive`` (a disconnect)."""
    spool.seek(0, 2)
    total = spool.tell()
    spool.seek(0)
    done = False

    async def replay():
        nonlocal done
        if done:
            return await receive()
        chunk = spool.read(REPLAY_CHUNK)
        done = spool.tell() >= total
        return {"type": "http.request", "body": chunk, "more_body": not done}

    return replay


def cors_options(cors) -> dict | None:
    """starlette CORSMiddleware options of ``serving.cors`` (None when no origin is allowed)."""
    origins = [str(o) for o in (cors.get("origins") or [])]
    if not origins:
        return None
    if "*" in origins and len(origins) > 1:
        raise ConfigError("serving.cors.origins: '*' allows every origin; list origins or use '*' alone")
    return {
        "allow_origins": origins,
        "allow_methods": ["GET", "POST", "OPTIONS"],
        "allow_headers": ["authorization", "x-api-key", "content-type"],
        "expose_headers": ["x-cmet-timings", "retry-after"],
        "max_age": 600,
    }
