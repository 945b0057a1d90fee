"""Orchestration commands: ``cmet pipeline run``, ``cmet promote``, ``cmet rollback``, ``cmet models``,
``cmet schedule``, ``cmet ui``, ``cmet pipeline tune-worker`` (one more Optuna worker on a shared study).

Heavy imports (Prefect, MLflow) happen inside the commands so ``cmet --help`` stays fast.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time

import typer


def _cfg(overrides):
    from cmet.config import compose

    return compose(list(overrides or []))


def _mlflow_uri(cfg) -> str:
    return str(cfg.pipeline.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI"))


def print_summary(s: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    con = Console()
    reg, gate = s["registry"], s["gate"]
    t = Table(title=f"cmet pipeline: {s['seconds']:.1f} s", show_header=False)
    t.add_row(
        "champion", f"{reg['name']} v{reg['after']['champion']}  (before: v{reg['before']['champion']})"
    )
    t.add_row(
        "candidate", f"v{reg['version']} ({'new' if reg['new'] else 'already registered'}); {reg['action']}"
    )
    t.add_row(
        "gate",
        "[green]PASSED[/]"
        if gate["passed"]
        else "[red]FAILED[/] " + ", ".join(c["name"] for c in gate["report"]["checks"] if not c["passed"]),
    )
    m = s["metrics"]
    for k in (
        "acc_emo/cmet",
        "acc_emo/speech_direct",
        "acc_emo/label",
        "acc_emo/reference",
        "acc_emo_ext/cmet",
        "latency_ms_per_frame",
    ):
        if k in m:
            t.add_row(k, f"{m[k]:.4f}")
    if s.get("tune"):
        t.add_row(
            "tuning",
            f"{s['tune']['n_complete']} complete / {s['tune']['n_pruned']} pruned; best {s['tune']['best_params']}",
        )
    t.add_row("bento", str(s.get("bento") or "(skipped)"))
    t.add_row("MLflow run", f"{s['parent_run_id']} @ {s['tracking_uri']}")
    t.add_row(
        "UIs", "make ui   (or: cmet ui)  -> MLflow http://127.0.0.1:5000, Prefect http://127.0.0.1:4200"
    )
    con.print(t)
    con.print(gate["summary"])


def register(app: typer.Typer) -> None:
    pipe = typer.Typer(
        help="The MLOps pipeline (Prefect flow): data -> checks -> tune -> train -> eval -> gate -> registry -> bento.",
        no_args_is_help=True,
    )
    app.add_typer(pipe, name="pipeline")

    @pipe.command("run")
    def run(
        overrides: list[str] = typer.Argument(
            None, help="Hydra overrides, e.g. experiment=fast train.steps=1"
        ),
    ):
        """Run the whole flow (Prefect's temporary local server unless PREFECT_API_URL is set)."""
        from flows.settings import configure_prefect_env

        configure_prefect_env()
        from data_checks.run import DataCheckError
        from flows.pipeline import run_pipeline

        t0 = time.perf_counter()
        try:
            s = run_pipeline(list(overrides or []))
        except DataCheckError as e:
            typer.secho(
                f"stopped at data validation; nothing was trained ({time.perf_counter() - t0:.1f}s)",
                fg="red",
                err=True,
            )
            raise e
        print_summary(s)

    @pipe.command("tune-worker")
    def tune_worker(
        features: str = typer.Option(..., help="FeatureSet folder (the pipeline's validated features)"),
        study: str = typer.Option(..., help="study name shared by the workers"),
        worker: str = typer.Option("w1", help="worker name (recorded on its trials)"),
        parent_run_id: str = typer.Option(None, help="MLflow parent run of the trials"),
        overrides: list[str] = typer.Argument(None),
    ):
        """One more Optuna worker on a shared study (same pipeline.tune.storage, e.g. PostgreSQL)."""
        import json

        from flows.pipeline import _mlflow
        from flows.tune import run_worker

        cfg = _cfg(overrides)
        exp = _mlflow(cfg)
        res = run_worker(cfg, features, parent_run_id, exp, study, worker=worker)
        typer.echo(json.dumps(res))

    @app.command("models")
    def models(overrides: list[str] = typer.Argument(None)):
        """List the registered versions with their aliases and gate outcome."""
        from rich.console import Console
        from rich.table import Table

        from flows import registry as R

        cfg = _cfg(overrides)
        name = str(cfg.pipeline.registered_model)
        rows = R.list_versions(R.client(_mlflow_uri(cfg)), name)
        t = Table(title=f"{name} @ {_mlflow_uri(cfg)}")
        for col in ("version", "aliases", "gate passed", "acc_emo/cmet", "created", "run"):
            t.add_column(col)
        for r in rows:
            t.add_row(
                r.version,
                ",".join(r.aliases),
                r.gate,
                r.acc,
                time.strftime("%Y-%m-%d %H:%M", time.gmtime(r.created / 1000)),
                r.run_id[:12],
            )
        Console().print(t if rows else f"no versions of {name!r} yet: run `make run`")

    @app.command("promote")
    def promote(
        version: str = typer.Argument(..., help="model version to make champion"),
        overrides: list[str] = typer.Argument(None),
    ):
        """A person's decision: make VERSION the champion (the previous one is kept for rollback)."""
        from flows import registry as R

        cfg = _cfg(overrides)
        name = str(cfg.pipeline.registered_model)
        prev = R.promote(R.client(_mlflow_uri(cfg)), name, version)
        typer.echo(f"{name}: champion v{prev} -> v{version}")

    @app.command("rollback")
    def rollback(overrides: list[str] = typer.Argument(None)):
        """Restore the previous champion."""
        from flows import registry as R

        cfg = _cfg(overrides)
        name = str(cfg.pipeline.registered_model)
        cur, prev = R.rollback(R.client(_mlflow_uri(cfg)), name)
        typer.echo(f"{name}: champion v{cur} -> v{prev} (rolled back)")

    @app.command("schedule")
    def schedule(
        overrides: list[str] = typer.Argument(None),
        cron: str = typer.Option(None, help="cron (UTC), default pipeline.schedule.cron"),
    ):
        """Serve a Prefect deployment of the pipeline on a cron schedule (runs until Ctrl-C)."""
        from flows.settings import configure_prefect_env

        configure_prefect_env()
        from flows.pipeline import cmet_pipeline

        cfg = _cfg(overrides)
        sc = cfg.pipeline.schedule
        params = {"overrides": list(sc.overrides or []) + list(overrides or [])}
        typer.echo(
            f"serving deployment {sc.deployment!r} of flow cmet-pipeline, cron {cron or sc.cron!r} (UTC), "
            f"parameters {params}; Ctrl-C stops"
        )
        cmet_pipeline.serve(
            name=str(sc.deployment),
            cron=str(cron or sc.cron),
            parameters=params,
            tags=["cmet", "retrain"],
            description="scheduled retraining of the C-MET connector",
        )

    @app.command("ui")
    def ui(
        port: int = typer.Option(5000, help="MLflow UI port"),
        prefect_port: int = typer.Option(4200, help="Prefect UI port (0: no Prefect UI)"),
    ):
        """MLflow UI (and the Prefect UI) on localhost against the project's stores; Ctrl-C stops both."""
        from cmet.config import compose

        cfg = compose([])
        uri = _mlflow_uri(cfg)
        art = str(cfg.pipeline.artifact_location)
        procs = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "mlflow",
                    "server",
                    "--backend-store-uri",
                    uri,
                    "--default-artifact-root",
                    art,
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--workers",
                    "1",
                ]
            )
        ]
        typer.echo(f"MLflow UI  http://127.0.0.1:{port}   (store {uri})")
        if prefect_port:
            env = dict(
                os.environ, PREFECT_SERVER_API_HOST="127.0.0.1", PREFECT_SERVER_API_PORT=str(prefect_port)
            )
            prefect = os.path.join(os.path.dirname(sys.executable), "prefect")
            procs.append(
                subprocess.Popen(
                    [prefect, "server", "start", "--host", "127.0.0.1", "--port", str(prefect_port)], env=env
                )
            )
            typer.echo(
                f"Prefect UI http://127.0.0.1:{prefect_port}   (PREFECT_HOME {os.environ.get('PREFECT_HOME')})"
            )
        typer.echo("Ctrl-C stops: " + " ; ".join(shlex.join(p.args) for p in procs))
        try:
            for p in procs:
                p.wait()
        except KeyboardInterrupt:
            for p in procs:
                p.terminate()
