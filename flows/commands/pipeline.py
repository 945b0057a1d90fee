"""``cmet pipeline run`` / ``cmet pipeline tune-worker``: the Prefect flow and one more Optuna worker.

Heavy imports (Prefect, MLflow) happen inside the commands so ``cmet --help`` stays fast.
"""

from __future__ import annotations

import json
import time

import typer

app = typer.Typer(
    name="pipeline",
    help="The MLOps pipeline (Prefect flow): data -> checks -> tune -> train -> eval -> gate -> registry -> bento.",
    no_args_is_help=True,
)

SUMMARY_METRICS = (
    "acc_emo/cmet",
    "acc_emo/speech_direct",
    "acc_emo/label",
    "acc_emo/reference",
    "acc_emo_ext/cmet",
    "latency_ms_per_frame",
)


def print_summary(s: dict) -> None:
    """The outcome of a pipeline run as a table (champion, candidate, gate, metrics, where to look)."""
    from rich.console import Console
    from rich.table import Table

    reg, gate = s["registry"], s["gate"]
    t = Table(title=f"cmet pipeline: {s['seconds']:.1f} s", show_header=False)
    t.add_row(
        "champion", f"{reg['name']} v{reg['after']['champion']}  (before: v{reg['before']['champion']})"
    )
    t.add_row(
        "candidate", f"v{reg['version']} ({'new' if reg['new'] else 'already registered'}); {reg['action']}"
    )
    failed = ", ".join(c["name"] for c in gate["report"]["checks"] if not c["passed"])
    t.add_row("gate", "[green]PASSED[/]" if gate["passed"] else f"[red]FAILED[/] {failed}")
    for k in SUMMARY_METRICS:
        if k in s["metrics"]:
            t.add_row(k, f"{s['metrics'][k]:.4f}")
    if s.get("tune"):
        tn = s["tune"]
        t.add_row(
            "tuning", f"{tn['n_complete']} complete / {tn['n_pruned']} pruned; best {tn['best_params']}"
        )
    t.add_row("bento", str(s.get("bento") or "(skipped)"))
    t.add_row("MLflow run", f"{s['parent_run_id']} @ {s['tracking_uri']}")
    t.add_row("run page", f"{s['run_url']}  (make ui first)")
    t.add_row(
        "UIs", "make ui   (or: cmet ui)  -> MLflow http://127.0.0.1:5000, Prefect http://127.0.0.1:4200"
    )
    con = Console()
    con.print(t)
    con.print(gate["summary"])


@app.command("run")
def run(
    overrides: list[str] = typer.Argument(None, help="Hydra overrides, e.g. experiment=fast train.steps=1"),
):
    """Run the whole flow (Prefect's temporary local server unless PREFECT_API_URL is set)."""
    from flows.settings import configure_prefect_env

    configure_prefect_env()
    from data_checks.run import DataCheckError
    from flows.pipeline import run_pipeline

    t0 = time.perf_counter()
    try:
        s = run_pipeline(list(overrides or []))
    except DataCheckError:
        secs = time.perf_counter() - t0
        typer.secho(f"stopped at data validation; nothing was trained ({secs:.1f}s)", fg="red", err=True)
        raise
    print_summary(s)


@app.command("tune-worker")
def tune_worker(
    features: str = typer.Option(..., help="FeatureSet folder (the pipeline's validated features)"),
    study: str = typer.Option(..., help="study name shared by the workers"),
    worker: str = typer.Option("w1", help="worker name (recorded on its trials)"),
    parent_run_id: str = typer.Option(None, help="MLflow parent run of the trials"),
    overrides: list[str] = typer.Argument(None),
):
    """One more Optuna worker on a shared study (same pipeline.tune.storage, e.g. PostgreSQL)."""
    from cmet.config import compose
    from flows.tracking import setup_experiment
    from flows.tune import run_worker

    cfg = compose(list(overrides or []))
    res = run_worker(cfg, features, parent_run_id, setup_experiment(cfg), study, worker=worker)
    typer.echo(json.dumps(res))
