"""Scale-out by configuration only (slow):

* PostgreSQL from Debian packages on loopback (installed with apt-get if absent, a throw-away cluster
  in a temp dir run by the ``postgres`` user) as the Optuna storage *and* the MLflow backend store;
  two Optuna workers (separate processes, ``cmet pipeline tune-worker``) on one study in parallel.
* ``cmet schedule``: the flow served as a Prefect deployment with the cron from config.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def _pg_bin(require) -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    require(found, "PostgreSQL server binaries not installed (`make test-deps`: apt-get install postgresql)")
    return Path(found[-1]).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def postgres(require):
    """A PostgreSQL cluster on 127.0.0.1:<free port>, trust auth, user ``cmet``; databases optuna, mlflow."""
    import tempfile

    bindir = _pg_bin(require)
    base = Path(tempfile.mkdtemp(prefix="cmet-pg-"))  # outside pytest's 0700 tree: postgres must reach it
    data, sock = base / "data", base / "sock"
    sock.mkdir()
    as_user: list[str] = []
    if os.geteuid() == 0:  # initdb refuses root: run the cluster as the postgres user
        shutil.chown(base, "postgres")
        shutil.chown(sock, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    port = _free_port()
    run = lambda *a: subprocess.run([*as_user, *a], check=True, capture_output=True, text=True, timeout=300)  # noqa: E731
    run(str(bindir / "initdb"), "-D", str(data), "-U", "cmet", "-A", "trust", "--no-sync")
    run(
        str(bindir / "pg_ctl"),
        "-D",
        str(data),
        "-l",
        str(base / "pg.log"),
        "-w",
        "-t",
        "120",
        "-o",
        f"-p {port} -k {sock} -c listen_addresses=127.0.0.1 -c fsync=off",
        "start",
    )
    try:
        for db in ("optuna", "mlflow"):
            run(str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "cmet", db)
        yield f"postgresql+psycopg2://cmet@127.0.0.1:{port}"  # SQLAlchemy 2.1 defaults to psycopg 3
    finally:
        subprocess.run(
            [*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
            capture_output=True,
            timeout=120,
        )
        shutil.rmtree(base, ignore_errors=True)


def test_two_optuna_workers_share_a_postgres_study(postgres, tmp_path):
    import mlflow
    import optuna

    from cmet.config import compose
    from cmet.data import build_feature_set

    ov = [
        "experiment=fast",
        f"paths.work_dir={tmp_path}/work",
        f"pipeline.tune.storage={postgres}/optuna",
        f"pipeline.tracking_uri={postgres}/mlflow",
        "pipeline.tune.n_trials=4",
        "pipeline.tune.steps=6",
        "pipeline.tune.pruner.kind=none",
        "train.num_threads=1",
    ]
    fs_dir = build_feature_set(compose(ov)).save(tmp_path / "features")
    mlflow.set_tracking_uri(f"{postgres}/mlflow")
    exp = mlflow.create_experiment("cmet", artifact_location=(tmp_path / "art").as_uri())
    with mlflow.start_run(experiment_id=exp, run_name="scale-out parent") as parent:
        pid = parent.info.run_id
    env = dict(os.environ, CMET_ROOT=str(tmp_path), MLFLOW_TRACKING_URI=f"{postgres}/mlflow")
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "flows.cli",
                "pipeline",
                "tune-worker",
                "--features",
                str(fs_dir),
                "--study",
                "shared",
                "--worker",
                w,
                "--parent-run-id",
                pid,
                *ov,
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for w in ("w1", "w2")
    ]
    outs = [p.communicate(timeout=1500)[0] for p in procs]
    for p, out in zip(procs, outs, strict=True):
        assert p.returncode == 0, out[-3000:]
    study = optuna.load_study(study_name="shared", storage=f"{postgres}/optuna")
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(done) >= 4
    assert {t.user_attrs["worker"] for t in done} == {"w1", "w2"}
    # the workers really overlapped in time (parallel, not one after the other)
    spans = {
        w: (
            min(t.datetime_start for t in done if t.user_attrs["worker"] == w),
            max(t.datetime_complete for t in done if t.user_attrs["worker"] == w),
        )
        for w in ("w1", "w2")
    }
    assert spans["w1"][0] < spans["w2"][1] and spans["w2"][0] < spans["w1"][1], spans
    children = mlflow.search_runs(
        experiment_ids=[exp], filter_string=f"tags.mlflow.parentRunId = '{pid}'", output_format="list"
    )
    assert {r.data.tags["worker"] for r in children} == {"w1", "w2"}  # both workers logged their trials
    assert len(children) >= 4 and all("train.lr" in r.data.params for r in children)


def test_schedule_creates_a_cron_deployment(tmp_path):
    """`cmet schedule` serves a deployment with the cron of pipeline.schedule; we see it in the API."""
    env = dict(os.environ, CMET_ROOT=str(tmp_path), PREFECT_HOME=str(tmp_path / "prefect"))
    port = _free_port()
    server = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "prefect"),
            "server",
            "start",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    env["PREFECT_API_URL"] = f"http://127.0.0.1:{port}/api"
    served = None
    try:
        import httpx

        deadline = time.time() + 300
        while time.time() < deadline:
            try:
                if httpx.get(f"{env['PREFECT_API_URL']}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(1)
        served = subprocess.Popen(
            [sys.executable, "-m", "flows.cli", "schedule", "pipeline.schedule.cron=15 4 * * 1"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        found = None
        while time.time() < deadline and served.poll() is None:
            r = httpx.post(f"{env['PREFECT_API_URL']}/deployments/filter", json={}, timeout=10)
            deps = [d for d in r.json() if d["name"] == "nightly-retrain"]
            if deps:
                found = deps[0]
                break
            time.sleep(2)
        assert found is not None, served.stdout.read() if served.poll() is not None else "no deployment"
        crons = [s["schedule"].get("cron") for s in found.get("schedules", [])]
        assert crons == ["15 4 * * 1"], found.get("schedules")
        # the scheduled runs get the configured overrides + the ones given to `cmet schedule`
        assert found["parameters"] == {"overrides": ["pipeline.schedule.cron=15 4 * * 1"]}, found["parameters"]
    finally:
        for p in (served, server):
            if p is not None and p.poll() is None:
                os.killpg(p.pid, 15)
                p.wait(timeout=60)
