"""Scheduling that fires: ``cmet schedule`` with a cron of every minute starts its own Prefect server
(which runs the scheduler), the scheduler creates a run by itself, the runner executes the pipeline to
Completed, and SIGTERM stops the runner, then the server, with exit code 0. Plus the pieces (fast):
override merging and the failure webhook."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from flows.schedule import healthy, merge_overrides

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_merge_overrides_later_wins_per_key():
    got = merge_overrides(["experiment=daily", "train.steps=5"], ["experiment=fast", "+x=1"], ["x=2"])
    assert got == ["train.steps=5", "experiment=fast", "x=2"]


def test_failure_webhook_posts_the_run(webhook):
    from flows.notify import notify_failure

    url, received = webhook
    run = SimpleNamespace(
        id="r-1",
        name="tiny-run",
        deployment_id=None,
        parameters={
            "overrides": ["experiment=fast"],
            "cfg_dict": {"pipeline": {"schedule": {"notify_url": url}}},
        },
    )
    state = SimpleNamespace(type=SimpleNamespace(value="FAILED"), message="boom")
    notify_failure(SimpleNamespace(name="cmet-pipeline"), run, state)
    assert received == [
        {
            "flow": "cmet-pipeline",
            "flow_run_id": "r-1",
            "flow_run_name": "tiny-run",
            "deployment_id": None,
            "state": "FAILED",
            "message": "boom",
            "overrides": ["experiment=fast"],
        }
    ]
    run.parameters["cfg_dict"]["pipeline"]["schedule"]["notify_url"] = "http://127.0.0.1:9/nothing"
    notify_failure(SimpleNamespace(name="cmet-pipeline"), run, state)  # logged, not raised


def _flow_runs(api: str, name: str) -> list[dict]:
    import httpx

    body = {"deployments": {"name": {"any_": [name]}}}
    return httpx.post(f"{api}/flow_runs/filter", json=body, timeout=10).json()


@pytest.mark.slow
def test_cron_deployment_fires_and_completes_then_stops_on_sigterm(tmp_path):
    port = _free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = dict(
        os.environ,
        CMET_ROOT=str(ROOT),
        PREFECT_HOME=str(tmp_path / "prefect"),
        MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path}/mlflow.db",
        PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS="5",
        PREFECT_RUNNER_POLL_FREQUENCY="5",
    )
    env.pop("PREFECT_API_URL", None)
    args = [sys.executable, "-m", "flows.cli", "schedule", "--cron", "* * * * *"]
    args += [
        f"pipeline.schedule.server_port={port}",
        "pipeline.schedule.deployment=every-minute",
        f"paths.work_dir={tmp_path}/work",
        f"pipeline.tracking_uri=sqlite:///{tmp_path}/mlflow.db",
        "experiment=fast",
        "pipeline.tune.enabled=false",
        "pipeline.bento=false",
        "pipeline.sample_video=false",
    ]
    log = open(tmp_path / "schedule.log", "w")
    p = subprocess.Popen(
        args, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    done = None
    try:
        deadline = time.time() + 600
        while time.time() < deadline and p.poll() is None and done is None:
            time.sleep(5)
            if not healthy(api):
                continue
            runs = _flow_runs(api, "every-minute")
            done = next((r for r in runs if r["state_type"] == "COMPLETED"), None)
            bad = [r for r in runs if r["state_type"] in ("FAILED", "CRASHED")]
            assert not bad, (bad, (tmp_path / "schedule.log").read_text()[-4000:])
        assert done is not None, (tmp_path / "schedule.log").read_text()[-4000:]
        assert done["auto_scheduled"] is True  # created by the server's scheduler, not by this test
        assert (
            "experiment=fast" in done["parameters"]["overrides"]
        )  # the CLI's override beat experiment=daily
        assert "experiment=daily" not in done["parameters"]["overrides"]
    finally:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)  # the command's own process: it stops the runner, then its server
        try:
            rc = p.wait(timeout=90)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            raise
    text = (tmp_path / "schedule.log").read_text()
    assert rc == 0, text[-4000:]
    assert "never awaited" not in text and "Traceback" not in text, text[-4000:]
    time.sleep(2)
    assert not healthy(api), "the Prefect server started by `cmet schedule` is still answering"


def _start_server(tmp_path, env: dict, port: int) -> subprocess.Popen:
    prefect = str(Path(sys.executable).with_name("prefect"))
    log = open(tmp_path / "server.log", "w")
    return subprocess.Popen(
        [prefect, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _stop_group(p: subprocess.Popen, grace: float = 60) -> None:
    """SIGTERM to the process group, SIGKILL after ``grace`` s (a worker busy with the next
    every-minute run may not stop in time)."""
    os.killpg(p.pid, signal.SIGTERM)
    try:
        p.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        p.wait(timeout=30)


@pytest.mark.slow
def test_work_pool_deployment_fires_on_a_worker(tmp_path):
    """The production path: a server, `cmet schedule --pool` registers the cron deployment on a work
    pool, a `prefect worker` executes the run the scheduler created."""
    port = _free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = dict(
        os.environ,
        CMET_ROOT=str(ROOT),
        PREFECT_HOME=str(tmp_path / "prefect"),
        MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path}/mlflow.db",
        PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS="5",
        PREFECT_WORKER_QUERY_SECONDS="5",
        PREFECT_API_URL=api,
    )
    server = _start_server(tmp_path, env, port)
    worker = None
    try:
        deadline = time.time() + 600
        while not healthy(api) and time.time() < deadline:
            assert server.poll() is None, (tmp_path / "server.log").read_text()[-3000:]
            time.sleep(1)
        args = [sys.executable, "-m", "flows.cli", "schedule", "--pool", "cmet-test", "--cron", "* * * * *"]
        args += [
            "pipeline.schedule.deployment=pool-every-minute",
            f"paths.work_dir={tmp_path}/work",
            f"pipeline.tracking_uri=sqlite:///{tmp_path}/mlflow.db",
            "experiment=fast",
            "pipeline.tune.enabled=false",
            "pipeline.bento=false",
            "pipeline.sample_video=false",
        ]
        out = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
        assert out.returncode == 0 and "work pool 'cmet-test'" in out.stdout, out.stdout + out.stderr
        prefect = str(Path(sys.executable).with_name("prefect"))
        wlog = open(tmp_path / "worker.log", "w")
        worker = subprocess.Popen(
            [prefect, "worker", "start", "--pool", "cmet-test", "--limit", "1"],
            cwd=ROOT,
            env=env,
            stdout=wlog,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        done = None
        while time.time() < deadline and done is None and worker.poll() is None:
            time.sleep(5)
            runs = _flow_runs(api, "pool-every-minute")
            done = next((r for r in runs if r["state_type"] == "COMPLETED"), None)
            bad = [r for r in runs if r["state_type"] in ("FAILED", "CRASHED")]
            assert not bad, (bad, (tmp_path / "worker.log").read_text()[-4000:])
        assert done is not None and done["auto_scheduled"], (tmp_path / "worker.log").read_text()[-4000:]
    finally:
        for p in (worker, server):
            if p is not None and p.poll() is None:
                _stop_group(p)
