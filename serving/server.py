"""Run the service as a subprocess on a free loopback port (tests, the load test, the browser test).

``with ServedBento("cmet_service:latest") as srv: requests.post(srv.url + "/emotions", json={})``.
The server is stopped by its own PID (SIGTERM, then SIGKILL after a grace period); nothing else is
touched.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from cmet.errors import CmetError

ROOT = Path(__file__).resolve().parent.parent


class ServerError(CmetError):
    """The service did not start (its log tail is in the message)."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServedBento:
    """``target``: a bento tag (``cmet_service:latest``) or ``serving.service:CmetService`` with
    ``model_dir`` (a serving model folder, no build needed)."""

    def __init__(
        self,
        target: str = "cmet_service:latest",
        model_dir: str | Path | None = None,
        port: int | None = None,
        log_path: str | Path | None = None,
        ready_timeout: float = 180.0,
        env: dict | None = None,
    ):
        self.target = target
        self.model_dir = model_dir
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = Path(log_path) if log_path else ROOT / ".cmet" / "logs" / f"serve-{self.port}.log"
        self.ready_timeout = ready_timeout
        self.extra_env = env or {}
        self.proc: subprocess.Popen | None = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def start(self) -> ServedBento:
        import requests

        from cmet.env import configure_local_env

        configure_local_env()
        env = {**os.environ, **self.extra_env, "BENTOML_DO_NOT_TRACK": "true", "PYTHONUNBUFFERED": "1"}
        # a served bento serves its own model: an inherited override (an in-process test client sets
        # one for the session) would swap in a bare folder without the bento's serving.json
        env.pop("CMET_SERVE_MODEL_DIR", None)
        if self.model_dir is not None:
            env["CMET_SERVE_MODEL_DIR"] = str(self.model_dir)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "wb")
        cmd = [
            sys.executable,
            "-m",
            "bentoml",
            "serve",
            self.target,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
        ]
        self.proc = subprocess.Popen(cmd, cwd=str(ROOT), env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + self.ready_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ServerError(f"bentoml serve exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                if requests.get(self.url + "/readyz", timeout=2).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.5)
        self.stop()
        raise ServerError(f"the service was not ready within {self.ready_timeout:.0f} s:\n{self.log_tail()}")

    def log_tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no log)"

    def stop(self, grace: float = 20.0) -> int | None:
        """SIGTERM to the server's own PID, SIGKILL after ``grace`` s; -> its exit code."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(timeout=10)

    def __enter__(self) -> ServedBento:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
