"""``cmet edit-batch MANIFEST.csv``: many edits as one Prefect flow whose tasks run on Dask.

The manifest is a CSV with the columns ``video, target, intensity, out`` (paths relative to the
manifest's folder; ``target`` any spelling of :func:`cmet.target.parse_blend`, e.g. ``happy`` or
``happy=0.7;sad=0.3`` -- commas inside a CSV cell need quotes). Each row is one task
(:func:`edit_item`) calling :func:`cmet.edit.edit_video`:

* resumable: a row whose ``out`` exists is skipped (the edit writes its mp4 under a temporary name
  and renames it when complete, so an existing ``out`` is a finished one);
* a failing row is reported (its error class and message) and the others go on;
* progress: one line per finished row (``k/n``) through the flow's logger;
* the report (every row's status, seconds, frames, faces) goes to ``<manifest>.report.json``.

The task runner is :class:`prefect_dask.DaskTaskRunner`: a LocalCluster of ``pipeline.batch.workers``
worker processes (one thread each) by default, or the scheduler at ``pipeline.batch.address``.
"""

from __future__ import annotations

import csv
import json
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from prefect import flow, get_run_logger, task

COLUMNS = ("video", "target", "intensity", "out")


@dataclass(frozen=True)
class BatchItem:
    """One row of the manifest (paths resolved)."""

    row: int
    video: str
    target: str
    intensity: float
    out: str


def read_manifest(path: str | Path) -> list[BatchItem]:
    """The manifest CSV -> items. A missing file, a missing column, a bad intensity or two rows
    writing the same ``out`` -> DataError naming the row."""
    from cmet.errors import DataError

    p = Path(path)
    if not p.is_file():
        raise DataError(f"manifest {p} does not exist")
    with p.open(newline="") as fh:
        rd = csv.DictReader(fh)
        missing = [c for c in COLUMNS if c not in (rd.fieldnames or [])]
        if missing:
            raise DataError(f"manifest {p.name}: missing column(s) {missing}; needs {list(COLUMNS)}")
        items, outs = [], {}
        for i, r in enumerate(rd, start=2):  # row 1 is the header
            try:
                inten = float(r["intensity"] or 1.0)
            except ValueError:
                raise DataError(
                    f"manifest {p.name} row {i}: intensity {r['intensity']!r} is not a number"
                ) from None
            if not (r["video"] and r["target"] and r["out"]):
                raise DataError(f"manifest {p.name} row {i}: video, target and out must not be empty")
            out = str((p.parent / r["out"]).resolve())
            if out in outs:
                raise DataError(f"manifest {p.name} rows {outs[out]} and {i} both write {r['out']}")
            outs[out] = i
            video = str((p.parent / r["video"]).resolve())
            items.append(BatchItem(i, video, r["target"].replace(";", ","), inten, out))
    if not items:
        raise DataError(f"manifest {p.name} has no rows")
    return items


@lru_cache(maxsize=4)
def _bundle(bundle_dir: str):
    from cmet.model.bundle import ModelBundle

    return ModelBundle.load(Path(bundle_dir))


@lru_cache(maxsize=4)
def _cfg(overrides: tuple[str, ...]):
    from cmet.config import compose

    return compose(list(overrides))


@task(name="edit-item")
def edit_item(
    item: BatchItem, bundle_dir: str, overrides: tuple[str, ...] = (), face: str = "largest"
) -> dict:
    """One row: the edit into ``item.out`` -> {row, status done|failed, seconds, error...}. Errors are
    returned, not raised: one bad row must not stop the batch."""
    import torch

    from cmet.edit import edit_video
    from cmet.target import Target

    torch.set_num_threads(1)
    t = time.perf_counter()
    rec = {"row": item.row, "video": item.video, "out": item.out}
    try:
        res = edit_video(
            item.video,
            Target.of(item.target),
            bundle=_bundle(bundle_dir),
            cfg=_cfg(tuple(overrides)),
            out=item.out,
            intensity=item.intensity,
            face=face,
        )
        rec.update(status="done", frames=res.n_frames, target=res.target, report=res.report)
    except Exception as e:  # reported per row; the batch goes on
        rec.update(status="failed", error=f"{type(e).__name__}: {e}")
    rec["seconds"] = round(time.perf_counter() - t, 3)
    return rec


@flow(name="cmet-edit-batch")
def edit_batch_flow(
    manifest: str, bundle_dir: str, overrides: list[str] | None = None, face: str = "largest"
) -> dict:
    """Every unfinished row of ``manifest`` as an :func:`edit_item` task on the flow's task runner."""
    from prefect.futures import as_completed

    log = get_run_logger()
    t0 = time.perf_counter()
    items = read_manifest(manifest)
    todo = [it for it in items if not Path(it.out).is_file()]
    skipped = [{"row": it.row, "out": it.out, "status": "skipped"} for it in items if it not in todo]
    log.info("%d rows: %d to edit, %d already done", len(items), len(todo), len(skipped))
    futures = [edit_item.submit(it, bundle_dir, tuple(overrides or ()), face) for it in todo]
    records = []
    for k, fut in enumerate(as_completed(futures), start=1):
        rec = fut.result()
        records.append(rec)
        msg = f"{k}/{len(todo)} row {rec['row']}: {rec['status']}" + (
            f" ({rec['error']})" if rec["status"] == "failed" else f" in {rec['seconds']:.1f} s"
        )
        (log.warning if rec["status"] == "failed" else log.info)(msg)
    records = sorted(records + skipped, key=lambda r: r["row"])
    wall = time.perf_counter() - t0
    summary = {
        "manifest": str(manifest),
        "rows": len(items),
        "done": sum(r["status"] == "done" for r in records),
        "skipped": len(skipped),
        "failed": sum(r["status"] == "failed" for r in records),
        "seconds": round(wall, 3),
        "items": records,
    }
    Path(manifest).with_suffix(".report.json").write_text(json.dumps(summary, indent=1, default=str))
    return summary


def batch_task_runner(address: str | None = None, workers: int = 2):
    """DaskTaskRunner on the scheduler at ``address``, else a LocalCluster of ``workers`` processes
    with one thread each (the edit is CPU-bound Python: processes, not threads, run in parallel)."""
    from prefect_dask import DaskTaskRunner

    if address:
        return DaskTaskRunner(address=address)
    return DaskTaskRunner(
        cluster_class="distributed.LocalCluster",
        cluster_kwargs={"n_workers": int(workers), "threads_per_worker": 1, "processes": True},
    )


def run_batch(
    manifest: str | Path,
    bundle_dir: str | Path,
    *,
    overrides: list[str] | None = None,
    address: str | None = None,
    workers: int | None = None,
    face: str = "largest",
) -> dict:
    """Compose the config once (``pipeline.batch.address`` / ``.workers`` unless given), then run
    :func:`edit_batch_flow` on Dask -> the batch summary."""
    from cmet.config import compose
    from flows.settings import configure_prefect_env

    configure_prefect_env()
    read_manifest(manifest)  # a bad manifest fails before any cluster starts
    cfg = compose(list(overrides or []))
    address = address if address is not None else cfg.pipeline.batch.address
    workers = workers if workers is not None else int(cfg.pipeline.batch.workers)
    f = edit_batch_flow.with_options(task_runner=batch_task_runner(address, workers))
    with shared_api():
        return f(str(manifest), str(bundle_dir), list(overrides or []), face)


@contextmanager
def shared_api():
    """One Prefect API for the flow and every Dask worker process: ``PREFECT_API_URL`` when set, else
    a temporary local server whose address the workers inherit (without it each worker process
    would start its own temporary server on the same SQLite file)."""
    if os.environ.get("PREFECT_API_URL"):
        yield os.environ["PREFECT_API_URL"]
        return
    from prefect.server.api.server import SubprocessASGIServer
    from prefect.settings import PREFECT_API_URL, temporary_settings

    server = SubprocessASGIServer()
    server.start(timeout=int(os.environ.get("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")))
    os.environ["PREFECT_API_URL"] = server.api_url
    try:
        with temporary_settings({PREFECT_API_URL: server.api_url}):
            yield server.api_url
    finally:
        from prefect.logging.handlers import APILogWorker

        APILogWorker.drain_all(timeout=5)  # the flow's last log lines, while the server still answers
        os.environ.pop("PREFECT_API_URL", None)
        server.stop()
