"""Top-level operations commands: ``cmet models``, ``cmet promote``, ``cmet rollback``, ``cmet schedule``,
``cmet ui``. Heavy imports (Prefect, MLflow) happen inside the commands so ``cmet --help`` stays fast.
"""

from __future__ import annotations

import os
import time

import typer

app = typer.Typer()


def _cfg(overrides):
    from cmet.config import compose

    return compose(list(overrides or []))


def _mlflow_uri(cfg) -> str:
    return str(cfg.pipeline.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI"))


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
        created = time.strftime("%Y-%m-%d %H:%M", time.gmtime(r.created / 1000))
        t.add_row(r.version, ",".join(r.aliases), r.gate, r.acc, created, r.run_id[:12])
    Console().print(t if rows else f"no versions of {name!r} yet: run `make run`")


@app.command("promote")
def promote(
    version: str = typer.Argument(..., help="model version to make champion"),
    overrides: list[str] = typer.Argument(None),
    force: bool = typer.Option(False, "--force", help="promote a version that failed its gate"),
):
    """A person's decision: make VERSION the champion (the previous one is kept for rollback). A version
    that failed its gate needs --force. Then `cmet redeploy` serves it."""
    from flows import registry as R

    cfg = _cfg(overrides)
    name = str(cfg.pipeline.registered_model)
    res = R.promote(R.client(_mlflow_uri(cfg)), name, version, force=force)
    if res["overridden"]:
        typer.secho(f"overriding the failed gate of v{version}: {'; '.join(res['overridden'])}", fg="yellow")
    typer.echo(f"{name}: champion v{res['previous']} -> v{version}; serve it with `cmet redeploy`")


@app.command("rollback")
def rollback(overrides: list[str] = typer.Argument(None)):
    """Restore the previous champion."""
    from flows import registry as R

    cfg = _cfg(overrides)
    name = str(cfg.pipeline.registered_model)
    cur, prev = R.rollback(R.client(_mlflow_uri(cfg)), name)
    typer.echo(f"{name}: champion v{cur} -> v{prev} (rolled back); serve it with `cmet redeploy`")


@app.command("redeploy")
def redeploy(
    overrides: list[str] = typer.Argument(None),
    restart: str = typer.Option(
        None, help="shell command restarting the service (default pipeline.redeploy.restart)"
    ),
    url: str = typer.Option(None, help="the running service (default pipeline.redeploy.url)"),
):
    """After promote / rollback: build the champion's bento, restart the service, check that it serves
    the champion."""
    from flows.redeploy import redeploy as run

    res = run(_cfg(overrides), restart=restart, url=url)
    state = f"serving v{res['served']}" if res["served"] else "no service answering (`make serve` serves it)"
    typer.echo(f"champion v{res['version']}: bento {res['bento']}; {state}")


@app.command("schedule")
def schedule(
    overrides: list[str] = typer.Argument(
        None, help="overrides of the scheduled runs (win over pipeline.schedule.overrides)"
    ),
    cron: str = typer.Option(None, help="cron (UTC), default pipeline.schedule.cron"),
    pool: str = typer.Option(None, help="register the deployment on this work pool (for a worker) and exit"),
):
    """Serve the pipeline on a cron schedule against a Prefect server that schedules (started here
    when none runs); SIGINT/SIGTERM stop the runner, then that server. With --pool: register the
    deployment on a work pool for `prefect worker start --pool POOL` (production, flows/README.md)."""
    from flows.settings import configure_prefect_env

    configure_prefect_env()
    from flows.schedule import deploy_to_pool, serve_schedule

    if pool:
        dep = deploy_to_pool(_cfg(overrides), pool, cron, list(overrides or []))
        typer.echo(f"deployment {dep} on work pool {pool!r}; run it with: prefect worker start --pool {pool}")
        return
    raise typer.Exit(serve_schedule(_cfg(overrides), cron, list(overrides or [])))


@app.command("ui")
def ui(
    port: int = typer.Option(5000, envvar="MLFLOW_PORT", help="MLflow UI port"),
    prefect_port: int = typer.Option(4200, envvar="PREFECT_PORT", help="Prefect UI port (0: no Prefect UI)"),
    jobs: bool = typer.Option(False, "--jobs", help="also MLflow's job runner (for GenAI evaluation jobs)"),
):
    """MLflow UI (and the Prefect UI) on localhost against the project's stores; a busy port is an
    error; Ctrl-C or SIGTERM stops both."""
    from flows.ui import run_ui

    raise typer.Exit(run_ui(_cfg([]), port, prefect_port, jobs))
