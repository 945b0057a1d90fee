"""``cmet ui``: the MLflow UI (and the Prefect UI) on localhost against the project's stores.

A busy port is an error before anything starts (not a URL printed for someone else's server); each UI
must answer its health check within ``startup_s`` or everything started is stopped and the command
fails. MLflow's job runner (huey consumers, ~1 GB) stays off unless ``jobs`` is asked for. SIGINT and
SIGTERM stop both servers.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from cmet.errors import ConfigError

HOST = "127.0.0.1"


def port_free(port: int, host: str = HOST) -> bool:
    """Whether a server could listen on ``host:port`` now (like servers do, ignoring TIME_WAIT)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def ui_commands(
    cfg, port: int, prefect_port: int, jobs: bool = False
) -> list[tuple[str, list[str], dict, str]]:
    """(name, command, environment, health URL) of each UI server."""
    uri = str(cfg.pipeline.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI"))
    art = str(cfg.pipeline.artifact_location)
    mlflow_cmd = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", uri]
    mlflow_cmd += ["--default-artifact-root", art, "--host", HOST, "--port", str(port), "--workers", "1"]
    env = dict(os.environ, MLFLOW_SERVER_ENABLE_JOB_EXECUTION="true" if jobs else "false")
    out = [("MLflow", mlflow_cmd, env, f"http://{HOST}:{port}/health")]
    if prefect_port:
        prefect = str(Path(sys.executable).with_name("prefect"))
        penv = dict(os.environ, PREFECT_SERVER_API_HOST=HOST, PREFECT_SERVER_API_PORT=str(prefect_port))
        cmd = [prefect, "server", "start", "--host", HOST, "--port", str(prefect_port)]
        out.append(("Prefect", cmd, penv, f"http://{HOST}:{prefect_port}/api/health"))
    return out


def run_ui(cfg, port: int, prefect_port: int, jobs: bool = False, startup_s: float = 180.0) -> int:
    """Start the UIs, wait until they answer, print their URLs, block until SIGINT/SIGTERM -> 0."""
    busy = [p for p in (port, prefect_port) if p and not port_free(p)]
    if busy:
        raise ConfigError(
            f"port {', '.join(map(str, busy))} on {HOST} is busy (a UI already running, or another program); "
            "stop it or pick other ports: make ui MLFLOW_PORT=5001 PREFECT_PORT=4201 "
            "(cmet ui --port 5001 --prefect-port 4201)"
        )
    procs: list[tuple[str, subprocess.Popen, str]] = []
    stop = {"now": False}

    def on_signal(signum, frame):
        stop["now"] = True

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        for name, cmd, env, health in ui_commands(cfg, port, prefect_port, jobs):
            procs.append((name, subprocess.Popen(cmd, env=env, start_new_session=True), health))
        deadline = time.monotonic() + startup_s
        waiting = {name for name, _, _ in procs}
        while waiting and not stop["now"]:
            for name, p, health in procs:
                if p.poll() is not None:
                    raise ConfigError(
                        f"the {name} UI exited with {p.returncode} while starting (see its output above)"
                    )
                if name in waiting and _answers(health):
                    waiting.discard(name)
                    print(f"{name} UI  {health.rsplit('/api', 1)[0].removesuffix('/health')}", flush=True)
            if time.monotonic() > deadline:
                raise ConfigError(f"{', '.join(sorted(waiting))} UI did not answer within {startup_s:.0f} s")
            time.sleep(0.5)
        if not stop["now"]:
            print(
                f"store {cfg.pipeline.tracking_uri or os.environ.get('MLFLOW_TRACKING_URI')}; Ctrl-C stops",
                flush=True,
            )
        while not stop["now"]:
            dead = [(n, p.returncode) for n, p, _ in procs if p.poll() is not None]
            if dead:
                raise ConfigError(f"the {dead[0][0]} UI exited with {dead[0][1]}")
            time.sleep(0.5)
        return 0
    finally:
        for _, p, _ in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for _, p, _ in procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
        for s, h in old.items():
            signal.signal(s, h)
