"""Load figures of the service on loopback: p50/p95 latency, throughput, failures, where the time goes.

``run_loadtest(url=None, ...) -> dict`` (what ``make bench`` calls; ``bench`` owns the tables): for each
endpoint (``edit`` on a short clip, ``expressions``) and each number of concurrent clients (1, 4, 16) it
sends a bounded number of requests (``requests_per_client`` each, and no more than ``max_seconds`` per
level), and reports p50/p95 latency, requests/s, the failed requests, and the server's per-stage timings
(``x-cmet-timings`` of edit, ``timings_s`` of expressions). With ``url=None`` it serves the latest bento
(or ``model_dir``) itself on a free loopback port and stops it by its PID afterwards.

``cmet bento loadtest [--url URL] [--clients 1,4,16] [--out bench/results/serving_load.json]``
"""

from __future__ import annotations

import json
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlparse

import numpy as np

from cmet.errors import ConfigError

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def _check_loopback(url: str) -> None:
    host = urlparse(url).hostname
    if host not in LOOPBACK:
        raise ConfigError(f"the load test only runs against loopback; got host {host!r}")


def _one(session, url: str, endpoint: str, video_bytes: bytes, emotion: str, timeout: float) -> dict:
    files = {"video": ("clip.mp4", video_bytes, "video/mp4")}
    t0 = time.perf_counter()
    try:
        r = session.post(f"{url}/{endpoint}", files=files, data={"emotion": emotion}, timeout=timeout)
        dt = time.perf_counter() - t0
        ok = r.status_code == 200 and len(r.content) > 0
        timings = {}
        if ok and endpoint == "edit" and r.headers.get("x-cmet-timings"):
            timings = json.loads(r.headers["x-cmet-timings"])
        elif ok and endpoint == "expressions":
            body = r.json()
            timings = dict(body.get("timings_s", {}))
            timings["total_server"] = body.get("total_s", 0.0)
        return {
            "ok": ok,
            "status": r.status_code,
            "latency_s": dt,
            "timings": timings,
            "error": None if ok else r.text[:200],
        }
    except Exception as e:  # a failed request is a figure, not a crash
        return {
            "ok": False,
            "status": None,
            "latency_s": time.perf_counter() - t0,
            "timings": {},
            "error": f"{type(e).__name__}: {e}"[:200],
        }


def run_level(
    url: str,
    endpoint: str,
    clients: int,
    video: Path,
    emotion: str = "happy",
    requests_per_client: int = 2,
    max_seconds: float = 120.0,
    timeout: float = 300.0,
) -> dict:
    """``clients`` threads each send up to ``requests_per_client`` requests (stopping when the level has
    run ``max_seconds``) -> latency percentiles, throughput, failures, mean per-stage server timings."""
    import requests

    _check_loopback(url)
    video_bytes = Path(video).read_bytes()
    results: list[dict] = []
    lock = threading.Lock()
    t_start = time.perf_counter()

    def client_loop(_):
        with requests.Session() as s:
            for _i in range(requests_per_client):
                if time.perf_counter() - t_start > max_seconds:
                    return
                res = _one(s, url, endpoint, video_bytes, emotion, timeout)
                with lock:
                    results.append(res)

    with ThreadPoolExecutor(max_workers=clients) as ex:
        list(ex.map(client_loop, range(clients)))
    wall = time.perf_counter() - t_start
    lat = np.array([r["latency_s"] for r in results if r["ok"]])
    stages: dict[str, list[float]] = {}
    for r in results:
        for k, v in r["timings"].items():
            stages.setdefault(k, []).append(float(v))
    failed = [r for r in results if not r["ok"]]
    return {
        "endpoint": endpoint,
        "clients": clients,
        "requests": len(results),
        "failed": len(failed),
        "errors": sorted({str(r["error"]) for r in failed})[:3],
        "p50_s": float(np.percentile(lat, 50)) if lat.size else None,
        "p95_s": float(np.percentile(lat, 95)) if lat.size else None,
        "mean_s": float(lat.mean()) if lat.size else None,
        "throughput_rps": (len(results) - len(failed)) / wall if wall > 0 else 0.0,
        "wall_s": wall,
        "server_stages_mean_s": {k: statistics.fmean(v) for k, v in sorted(stages.items())},
    }


def make_clip(dst: Path, seconds: float = 1.0, release_dir: Path | None = None) -> Path:
    """The short clip of the load test: the first ``seconds`` of the real MEAD video when present."""
    from serving.sample import make_sample

    make_sample(dst, release_dir, seconds=seconds)
    return dst


def run_loadtest(
    url: str | None = None,
    *,
    clients: tuple[int, ...] = (1, 4, 16),
    endpoints: tuple[str, ...] = ("expressions", "edit"),
    clip_seconds: float = 1.0,
    requests_per_client: int = 2,
    max_seconds_per_level: float = 120.0,
    emotion: str = "happy",
    bento: str = "cmet_service:latest",
    model_dir: str | Path | None = None,
    release_dir: str | Path | None = None,
    workdir: str | Path | None = None,
) -> dict:
    """Every (endpoint, clients) level -> a dict {"levels": [...], "clip": {...}, "server": ...}."""
    import tempfile

    from rich.console import Console

    from serving.inputs import Limits, probe_video
    from serving.server import ServedBento

    console = Console(stderr=True)
    rel = Path(release_dir) if release_dir else None
    if rel is None:
        from cmet.env import project_root

        cand = project_root().parent / "shared" / "data" / "cmet_release"
        rel = cand if cand.is_dir() else None
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        clip = make_clip(Path(tmp) / "clip.mp4", clip_seconds, rel)
        info = probe_video(clip, Limits())
        srv = None
        if url is None:
            srv = ServedBento(
                "serving.service:CmetService" if model_dir else bento, model_dir=model_dir
            ).start()
            url = srv.url
        _check_loopback(url)
        try:
            import requests

            version = requests.post(f"{url}/version", json={}, timeout=30).json()
            # one warm-up request per endpoint (model and face runtime load lazily)
            for ep in endpoints:
                run_level(url, ep, 1, clip, emotion, requests_per_client=1, max_seconds=max_seconds_per_level)
            levels = []
            for ep in endpoints:
                for c in clients:
                    console.print(f"[cyan]load[/] {ep}: {c} client(s) x {requests_per_client} request(s)")
                    lv = run_level(url, ep, c, clip, emotion, requests_per_client, max_seconds_per_level)
                    console.print(
                        f"  p50 {lv['p50_s'] or float('nan'):.3f} s  p95 {lv['p95_s'] or float('nan'):.3f} s  "
                        f"{lv['throughput_rps']:.2f} req/s  failed {lv['failed']}/{lv['requests']}"
                    )
                    levels.append(lv)
        finally:
            if srv is not None:
                srv.stop()
    return {
        "url": url,
        "served_by_loadtest": srv is not None,
        "clip": {
            "source": "mead W009_038" if rel else "synthetic",
            "frames": info.n_frames,
            "fps": info.fps,
            "size": [info.width, info.height],
            "seconds": info.duration_s,
        },
        "model": {k: version.get(k) for k in ("model", "version", "alias", "device")},
        "requests_per_client": requests_per_client,
        "levels": levels,
        "failed_total": sum(lv["failed"] for lv in levels),
    }
