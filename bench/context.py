"""What every section gets: settings (full or quick), folders, the release data (or None), shared state.

Sections share trained models through :func:`trained_runs` (one training per fold and variant per
``make bench``; the run folders under ``.cmet/bench/runs/<key>/`` are reused by a second call with
the same settings and code, e.g. ``python -m bench.run --only pixel`` after a full run; ``--fresh``
retrains).
"""

from __future__ import annotations

import functools
import hashlib
import json
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.common import RESULTS

ROOT = Path(__file__).resolve().parent.parent
REAL_FOLDS = ("M003", "M030", "W009", "W015")  # the MEAD test speakers of the release
VIDEO_SPEAKER = "W009"  # the speaker of asset/video/W009_038.mp4

#: settings of a full run (``make bench``) and of the smoke test (``--quick``)
FULL = dict(
    steps=400,
    batch=64,
    n_draws=8,
    folds=REAL_FOLDS,
    ks=(1, 3, 5, 10),
    train_k=10,
    gen_steps=400,
    gen_overrides=(),
    pixel_seconds=None,
    pixel_stride=2,
    lengths=(1, 4, 16, 64),
    clip_counts=(1, 3, 10, 30, 100),
    repeats=3,
    throughput_steps={"cmet_small": 30, "cmet_paper": 3},
    service_clients=(1, 4, 16),
    service_requests=2,
    variants=("full", "recon", "recon+cnt"),
    workers=2,
)
QUICK = dict(
    steps=10,
    batch=32,
    n_draws=1,
    folds=(VIDEO_SPEAKER,),
    ks=(1, 3),
    train_k=3,
    gen_steps=10,
    gen_overrides=("experiment=fast",),
    pixel_seconds=1.0,
    pixel_stride=5,
    lengths=(0.4, 0.8),
    clip_counts=(1, 10),
    repeats=2,
    throughput_steps={"cmet_small": 3, "cmet_paper": 1},
    service_clients=(1,),
    service_requests=1,
    variants=("full", "recon", "recon+cnt"),
    workers=1,
)

#: ablation variants of C-MET (the paper's Table 6): overrides on top of the full model
VARIANTS = {
    "full": [],
    "recon": ["train.loss.w_contrastive=0", "train.loss.w_direction=0", "eval.baselines=[label,reference]"],
    "recon+cnt": ["train.loss.w_direction=0", "eval.baselines=[label,reference]"],
}


class Skip(Exception):
    """A section cannot run here (e.g. ../shared absent); the message says why."""


@dataclass
class Section:
    name: str
    title: str
    markdown: str
    data: dict
    skipped: str | None = None
    seconds: float = 0.0


@dataclass
class Ctx:
    quick: bool = False
    out: Path = RESULTS
    work: Path = ROOT / ".cmet" / "bench"
    release: Path | None = None
    fresh: bool = False
    data_override: str | None = None  # the generated track's data source (tests use the simulator)
    state: dict = field(default_factory=dict)
    settings: dict | None = None  # overrides of FULL/QUICK (tests)

    @property
    def s(self) -> dict:
        return {**(QUICK if self.quick else FULL), **(self.settings or {})}

    def need_release(self) -> Path:
        if self.release is None:
            raise Skip("needs the authors' release data in ../shared/data/cmet_release (absent here)")
        return self.release

    def reproduce(self, section: str) -> str:
        q = " --quick" if self.quick else ""
        return f"`python -m bench.run --only {section}{q}` (or `make bench` for all sections)"


def find_release() -> Path | None:
    from cmet.config import compose

    p = Path(str(compose([]).paths.release_dir))
    if not p.is_absolute():
        p = (ROOT / p).resolve()
    return p if (p / "audios" / "MEAD").is_dir() else None


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """Git tree hash of cmet/ (+ '-dirty' when it has uncommitted changes): part of the run cache key.

    Taken once per process, so that one bench run keeps its keys while others edit the working tree."""
    try:
        tree = subprocess.run(
            ["git", "rev-parse", "HEAD:cmet"], cwd=ROOT, capture_output=True, text=True, timeout=20
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "cmet", "configs"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=20,
        ).stdout.strip()
        return tree[:12] + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def run_key(overrides: list[str]) -> str:
    return hashlib.sha256(json.dumps([overrides, code_version()]).encode()).hexdigest()[:10]


def base_overrides(ctx: Ctx, steps: int) -> list[str]:
    s = ctx.s
    return [
        f"train.steps={steps}",
        f"train.batch_size={s['batch']}",
        "train.eval_every=0",
        "train.quiet=true",
        "train.num_threads=1",
        f"train.k_clips={s['train_k']}",
        f"eval.n_draws={s['n_draws']}",
        "train.checkpoint_every=100000",
    ]


def train_cached(ctx: Ctx, overrides: list[str], features, label: str) -> dict:
    """``cmet.train.train`` with a run folder keyed on (overrides, code); reuses a finished run's metrics."""
    import shutil

    from cmet.config import compose
    from cmet.train import train

    out = ctx.work / "runs" / f"{label}-{run_key(overrides)}"
    done = out / "metrics.json"
    if ctx.fresh and out.exists() and not ctx.state.get(f"fresh:{out}"):
        shutil.rmtree(out)
    ctx.state[f"fresh:{out}"] = True
    if done.is_file() and (out / "bundle" / "bundle.json").is_file():
        m = json.loads(done.read_text())
        m["cached"] = True
        return m
    cfg = compose(overrides)
    t = time.perf_counter()
    m = train(cfg, features=features, out_dir=out)
    m["wall_seconds"] = time.perf_counter() - t
    m["cached"] = False
    done.write_text(json.dumps(m, indent=1, default=str))
    return m


def release_features(ctx: Ctx):
    """The release_au FeatureSet (built once per bench run; split column set per fold by :func:`fold_features`)."""
    if "release_fs" not in ctx.state:
        from cmet.config import compose
        from cmet.data import build_feature_set
        from cmet.data.features import FeatureSet

        ctx.need_release()
        ov = ["data=release_au", f"data.release_dir={ctx.release}", "data.val_identity=null"]
        folder = ctx.work / "features" / f"release_au-{run_key(ov)}"
        if (folder / "meta.json").is_file() and not ctx.fresh:
            ctx.state["release_fs"] = FeatureSet.load(folder)
        else:
            ctx.state["release_fs"] = build_feature_set(compose(ov))
            ctx.state["release_fs"].save(folder)
        ctx.state["release_fs_dir"] = folder
    return ctx.state["release_fs"]


def fold_features(ctx: Ctx, test_identity: str):
    """Leave one speaker out: ``test_identity`` is the test split, the three others train (no val)."""
    import dataclasses

    from cmet.data.release_au import assign_splits

    fs = release_features(ctx)
    clips = fs.clips.copy()
    clips["split"] = assign_splits(clips["identity"], test_identity, None).to_numpy()
    return dataclasses.replace(fs, clips=clips)


def real_overrides(ctx: Ctx, fold: str, variant: str) -> list[str]:
    return [
        "data=release_au",
        f"data.test_identity={fold}",
        "data.val_identity=null",
        "train.min_clips=2",  # W009 has only 2 angry clips: with W009 in training, a 2-clip mean is allowed
        *base_overrides(ctx, ctx.s["steps"]),
        *VARIANTS[variant],
    ]


def _train_job(job: dict) -> dict:
    """One training in a worker process: features from a saved folder (split set here), cached run."""
    import torch

    torch.set_num_threads(1)
    from cmet.data.features import FeatureSet
    from cmet.env import configure_local_env

    configure_local_env(ROOT)
    fs = FeatureSet.load(job["features"])
    if job.get("test_identity"):
        import dataclasses

        from cmet.data.release_au import assign_splits

        clips = fs.clips.copy()
        clips["split"] = assign_splits(clips["identity"], job["test_identity"], None).to_numpy()
        fs = dataclasses.replace(fs, clips=clips)
    ctx = Ctx(quick=job["quick"], work=Path(job["work"]), fresh=job["fresh"])
    return train_cached(ctx, job["overrides"], fs, job["label"])


def train_many(ctx: Ctx, jobs: list[dict], desc: str) -> list[dict]:
    """Run training jobs ({label, overrides, features[, test_identity]}) on ``ctx.s['workers']`` processes."""
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from multiprocessing import get_context

    from rich.progress import Progress

    for j in jobs:
        j.update(quick=ctx.quick, work=str(ctx.work), fresh=ctx.fresh)
    out: list = [None] * len(jobs)
    workers = max(1, min(int(ctx.s.get("workers", 1)), len(jobs)))
    with Progress(transient=True) as prog:
        task = prog.add_task(f"{desc}: {len(jobs)} trainings on {workers} process(es)", total=len(jobs))
        if workers == 1:
            for i, j in enumerate(jobs):
                out[i] = _train_job(j)
                prog.advance(task)
        else:
            with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as ex:
                futs = {ex.submit(_train_job, j): i for i, j in enumerate(jobs)}
                for f in as_completed(futs):
                    out[futs[f]] = f.result()
                    prog.advance(task)
    return out


def trained_runs(ctx: Ctx, variants=("full",)) -> dict:
    """{(fold, variant): metrics (with ``bundle_dir``)} for the real-speech track; trains what is missing
    (all variants of all folds at once, in parallel processes)."""
    runs = ctx.state.setdefault("real_runs", {})
    want = [(f, v) for f in ctx.s["folds"] for v in variants]
    if any(k not in runs for k in want):
        todo = [(f, v) for f in ctx.s["folds"] for v in ctx.s["variants"] if (f, v) not in runs]
        release_features(ctx)
        jobs = [
            dict(
                label=f"real-{f}-{v}",
                overrides=real_overrides(ctx, f, v),
                test_identity=f,
                features=str(ctx.state["release_fs_dir"]),
            )
            for f, v in todo
        ]
        for (f, v), m in zip(todo, train_many(ctx, jobs, "real-speech folds"), strict=True):
            runs[(f, v)] = m
    return {k: runs[k] for k in want}


def load_bundle(metrics: dict):
    from cmet.model.bundle import ModelBundle

    return ModelBundle.load(metrics["bundle_dir"])
