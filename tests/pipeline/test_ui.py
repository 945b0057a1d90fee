"""cmet ui: a busy port fails loudly before anything starts; the MLflow UI starts without MLflow's job
runner and stops on SIGTERM (slow: an MLflow server start)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cmet.config import compose
from cmet.errors import ConfigError
from flows.ui import port_free, run_ui

ROOT = Path(__file__).resolve().parents[2]


def test_busy_port_is_an_error_naming_it():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(ConfigError, match=rf"port {port} on 127.0.0.1 is busy.*MLFLOW_PORT="):
            run_ui(compose([]), port, 0)


def _children(pid: int) -> list[str]:
    out = subprocess.run(["ps", "-o", "args=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    kids = [
        int(x)
        for x in subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    ]
    return out.splitlines() + [a for k in kids for a in _children(k)]


@pytest.mark.slow
def test_ui_starts_without_job_runner_and_stops_on_sigterm(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path}/mlflow.db")
    args = [sys.executable, "-m", "flows.cli", "ui", "--port", str(port), "--prefect-port", "0"]
    p = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lines = []
        deadline = time.time() + 240
        while time.time() < deadline:
            line = p.stdout.readline()
            lines.append(line)
            if line.startswith("MLflow UI") or p.poll() is not None:
                break
        assert lines[-1].strip() == f"MLflow UI  http://127.0.0.1:{port}", "".join(lines)
        procs = _children(p.pid)
        assert any("mlflow" in a for a in procs) and not any("huey" in a for a in procs), procs
    finally:
        p.send_signal(signal.SIGTERM)
        rc = p.wait(timeout=60)
    assert rc == 0
    time.sleep(1)
    assert port_free(port)
