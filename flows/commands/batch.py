"""``cmet edit-batch MANIFEST.csv``: the edits of a manifest as a Prefect flow on Dask (:mod:`flows.batch`)."""

from __future__ import annotations

from pathlib import Path

import typer

#: top-level command (``cmet edit-batch``)
app = typer.Typer()


@app.command("edit-batch")
def edit_batch(
    manifest: Path = typer.Argument(..., help="CSV with the columns video, target, intensity, out"),
    model: Path = typer.Option(
        None, "--model", help="model bundle folder (default: the champion, else the newest under .cmet/)"
    ),
    address: str = typer.Option(
        None, "--address", help="Dask scheduler (default: pipeline.batch.address, else a LocalCluster)"
    ),
    workers: int = typer.Option(
        None, "--workers", help="LocalCluster workers (default: pipeline.batch.workers)"
    ),
    face: str = typer.Option(
        "largest", "--face", help="face to edit: largest, all, or a number (0 = largest)"
    ),
    overrides: list[str] = typer.Argument(None, help="config overrides, e.g. face.render_gain=1.4"),
):
    """Edit every row of a manifest (finished rows skipped, failures reported, the rest go on)."""
    from rich.console import Console

    from cmet.config import compose
    from flows.batch import run_batch

    bundle = model
    if bundle is None:
        from flows.registry import default_bundle_dir

        bundle = default_bundle_dir(compose(list(overrides or [])))
    s = run_batch(manifest, bundle, overrides=overrides, address=address, workers=workers, face=face)
    con = Console(stderr=True)
    for r in s["items"]:
        if r["status"] == "failed":
            con.print(f"[red]row {r['row']} failed[/]: {r['error']}")
    con.print(
        f"{s['rows']} rows: {s['done']} edited, {s['skipped']} already done, {s['failed']} failed "
        f"in {s['seconds']:.1f} s; report {Path(manifest).with_suffix('.report.json')}"
    )
    if s["failed"]:
        raise typer.Exit(1)
