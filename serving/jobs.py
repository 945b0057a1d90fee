"""The job store of long edits: submit (checked like /edit, up front), status, get.

A job is a folder ``<root>/<id>/`` holding only what the edit still reads (the checked input files,
moved out of the request's temporary folder) and, once done, ``edited.mp4``. The inputs are deleted as
soon as the edit ends; the result is deleted when it is fetched, or ``retention_s`` after it finished;
a failed job keeps only its error message. Nothing of the request (headers, form, other uploads) is
kept. Jobs run one after another on a worker thread (the engine bounds edits anyway).
"""

from __future__ import annotations

import shutil
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from cmet.errors import CmetError, DataError
from serving.errors import RateLimitedError

RESULT = "edited.mp4"


class JobNotFoundError(DataError):
    """No job with this id (never submitted, fetched already, or expired)."""


@dataclass
class Job:
    id: str
    folder: Path
    status: str = "in_progress"  # in_progress | completed | failed (the names BentoML's tasks use)
    created_at: float = field(default_factory=time.time)
    finished_at: float | None = None
    error: dict | None = None  # {"error": code, "message": text}
    info: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        out = {"task_id": self.id, "status": self.status, "created_at": _iso(self.created_at)}
        out["finished_at"] = _iso(self.finished_at) if self.finished_at else None
        if self.error:
            out.update(self.error)
        return out | self.info


class JobStore:
    """``submit(request, run)`` -> Job; ``run(request, out_path) -> dict`` does the edit."""

    def __init__(self, root: Path, retention_s: float = 3600.0, max_pending: int = 8) -> None:
        self.root = Path(root)
        shutil.rmtree(self.root, ignore_errors=True)  # jobs of an earlier server are gone with it
        self.root.mkdir(parents=True, exist_ok=True)
        self.retention_s = float(retention_s)
        self.max_pending = int(max_pending)
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cmet-job")

    def submit(self, request, run: Callable[[object, Path], dict]) -> Job:
        """Move the request's input files into a new job folder and queue the edit."""
        self.sweep()
        with self._lock:
            pending = sum(j.status == "in_progress" for j in self._jobs.values())
            if pending >= self.max_pending:
                raise RateLimitedError(
                    f"{pending} jobs are waiting; the limit is {self.max_pending}, try later"
                )
            jid = uuid.uuid4().hex
            job = Job(jid, self.root / jid)
            self._jobs[job.id] = job
        inputs = job.folder / "inputs"
        inputs.mkdir(parents=True)
        moved = {k: Path(shutil.move(str(p), inputs / f"{k}{p.suffix}")) for k, p in request.inputs.items()}
        self._pool.submit(self._run, job, request.moved(moved), run)
        return job

    def _run(self, job: Job, request, run) -> None:
        from serving.errors import classify

        try:
            job.info = run(request, job.folder / RESULT) or {}
            job.status = "completed"
        except CmetError as e:
            job.error = {"error": classify(e)[1], "message": str(e)}
            job.status = "failed"
        except Exception as e:  # noqa: BLE001  (logged; the client gets a code, not the server's details)
            import logging

            logging.getLogger(__name__).exception("job %s failed", job.id)
            job.error = {"error": "internal_error", "message": f"the edit failed ({type(e).__name__})"}
            job.status = "failed"
        finally:
            job.finished_at = time.time()
            shutil.rmtree(job.folder / "inputs", ignore_errors=True)

    def get(self, job_id: str) -> Job:
        self.sweep()
        with self._lock:
            job = self._jobs.get(str(job_id))
        if job is None:
            raise JobNotFoundError(
                f"task_id {str(job_id)[:64]!r}: no such job (never submitted, fetched, or expired)"
            )
        return job

    def take(self, job_id: str) -> Path:
        """The result file of a completed job; the job is forgotten (call :meth:`delete` after sending)."""
        job = self.get(job_id)
        if job.status != "completed":
            raise DataError(f"task {job.id} is {job.status}; the result can be fetched once it is completed")
        with self._lock:
            self._jobs.pop(job.id, None)
        return job.folder / RESULT

    def delete(self, path: Path) -> None:
        """Remove a fetched result and its job folder."""
        shutil.rmtree(Path(path).parent, ignore_errors=True)

    def sweep(self, now: float | None = None) -> int:
        """Forget and delete the jobs that finished more than ``retention_s`` ago -> how many."""
        now = time.time() if now is None else now
        with self._lock:
            old = [j for j in self._jobs.values() if j.finished_at and now - j.finished_at > self.retention_s]
            for j in old:
                self._jobs.pop(j.id, None)
        for j in old:
            shutil.rmtree(j.folder, ignore_errors=True)
        return len(old)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        shutil.rmtree(self.root, ignore_errors=True)


def _iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))
