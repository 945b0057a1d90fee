"""Scale-out by configuration only (slow):

* PostgreSQL from Debian packages on loopback (installed with apt-get if absent, a throw-away cluster
  in a temp dir run by the ``postgres`` user) as the Optuna storage *and* the MLflow backend store;
  two Optuna workers (separate processes, ``cmet pipeline tune-worker``) on one study in parallel.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import sys
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
