"""Section ``speed``: inference time per video (the paper's AITV), how it grows, training throughput, memory.

* The whole :func:`cmet.edit.edit_video` of the real 7 s MEAD video (read, landmarks, audio, model,
  render, H.264 encode with the speech muxed), median of repeated runs in this process (warm), per stage,
  real-time factor = video seconds / wall seconds; plus one cold run in a fresh interpreter for the
  peak memory (imports and model loading included).
* Edit time vs video length (the real video looped forth and back to 1, 4, 16, 64 s) and the model
  stage vs the number of emotion clips k (only that stage depends on k with precomputed features).
* Training throughput (samples/s) of ``cmet_small`` and ``cmet_paper`` on the real-speech features,
  each in a fresh interpreter (peak memory), batch 32 (the paper-size one is slow on a CPU).
* Pipeline wall time of ``make run``: read from MLflow (``pipeline_seconds`` of the latest pipeline run),
  not re-run here.
"""

from __future__ import annotations

import json
import statistics
import tempfile
from pathlib import Path

import numpy as np

from bench.common import Timing, hardware, load_average, md_table, run_isolated, time_it
from bench.context import ROOT, VIDEO_SPEAKER, Ctx, Section, trained_runs

NAME = "speed"
TITLE = "Speed and cost"
PAPER_AITV = 2.643
STAGES = ("load_model", "audio", "read", "landmarks", "model", "render", "encode", "other")
THROUGHPUT_BATCH = 32


def looped_video(src: Path, seconds: float, dst: Path) -> Path:
    """The real video looped forth and back (no jump) to ``seconds``; no audio track."""
    from cmet.media import read_video, write_video

    frames, fps = read_video(src)
    n = max(5, int(round(seconds * fps)))
    pingpong = np.concatenate([frames, frames[::-1]])
    idx = np.arange(n) % len(pingpong)
    return write_video(dst, pingpong[idx], fps, None)


def timed_edits(video: Path, bundle, out: Path, repeats: int, warmup: int, cfg=None) -> tuple[Timing, dict]:
    """Wall time of ``edit_video`` (config composed once, as the service does) and its median stages."""
    from cmet.edit import edit_video

    stages: dict[str, list[float]] = {}

    def once():
        r = edit_video(video, "happy", bundle=bundle, out=out, cfg=cfg)
        for k, v in r.timings.items():
            stages.setdefault(k, []).append(v)

    t = time_it(once, repeats=repeats, warmup=warmup)
    keep = {k: v[warmup:] for k, v in stages.items()}
    med = {k: statistics.median(v) for k, v in keep.items()}
    med["other"] = max(0.0, t.median_s - sum(v for k, v in med.items() if k != "total"))
    return t, med


_ISO_EDIT = """
import json, time, torch
torch.set_num_threads(1)
t0 = time.perf_counter()
from cmet.config import compose
from cmet.edit import edit_video
r = edit_video({video!r}, "happy", bundle={bundle!r}, out={out!r}, cfg=compose([]))
from bench.common import peak_rss_mb
print(json.dumps(dict(wall_s=time.perf_counter() - t0, timings=r.timings, peak_rss_mb=peak_rss_mb())))
"""

_ISO_TRAIN = """
import json, time, torch
torch.set_num_threads(1)
from cmet.config import compose
from cmet.data.features import FeatureSet
from cmet.data.sampling import PairSampler
from cmet.model.connector import Connector
from cmet.train_loop import compute_loss, to_torch
from bench.common import peak_rss_mb
cfg = compose(["model={model}"])
fs = FeatureSet.load({features!r}).split("train")
model = Connector.from_cfg(cfg.model, fs.d_speech, fs.d_expr, "difference")
n_params = sum(p.numel() for p in model.parameters())
sampler = PairSampler(fs, fs.train_emotions, int(cfg.model.window), 10, 3, 42)
opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=1e-5)
bs = {batch}
def step():
    b = to_torch(sampler.sample(bs), torch.device("cpu"))
    loss, _ = compute_loss(model, b, cfg.train.loss)
    opt.zero_grad(); loss.backward(); opt.step()
step()
times = []
for _ in range({steps}):
    t = time.perf_counter(); step(); times.append(time.perf_counter() - t)
times.sort()
med = times[len(times) // 2]
print(json.dumps(dict(samples_per_s=bs / med, step_s=med, step_min_s=times[0], step_max_s=times[-1],
                      steps=len(times), batch=bs, n_params=n_params, peak_rss_mb=peak_rss_mb())))
"""


def pipeline_time() -> dict:
    """Latest ``pipeline_seconds`` in the project's MLflow store (None when ``make run`` never ran)."""
    try:
        from cmet.env import configure_local_env

        configure_local_env(ROOT)
        import mlflow

        runs = mlflow.search_runs(
            search_all_experiments=True,
            filter_string="metrics.pipeline_seconds > 0",
            order_by=["attributes.start_time DESC"],
            max_results=20,
        )
        if len(runs) == 0:
            return {"found": False}
        rows = []
        for _, r in runs.iterrows():
            rows.append(
                dict(
                    seconds=float(r["metrics.pipeline_seconds"]),
                    start=str(r["start_time"]),
                    overrides=str(r.get("params.overrides", "?")),
                    run_id=str(r["run_id"]),
                )
            )
        full = [x for x in rows if x["overrides"] in ("(none)", "")]
        return {
            "found": True,
            "latest": rows[0],
            "latest_default": full[0] if full else None,
            "n_runs": len(rows),
        }
    except Exception as e:  # the store may be absent or locked: a figure we cannot give, not a crash
        return {"found": False, "error": f"{type(e).__name__}: {e}"[:300]}


def run(ctx: Ctx) -> Section:
    from bench.context import release_features
    from cmet.model.bundle import ModelBundle

    rel = ctx.need_release()
    s = ctx.s
    video = rel / "asset" / "video" / "W009_038.mp4"
    runs = trained_runs(ctx, ("full",))
    key = (VIDEO_SPEAKER, "full") if (VIDEO_SPEAKER, "full") in runs else next(iter(runs))
    bundle_dir = runs[key]["bundle_dir"]
    bundle = ModelBundle.load(bundle_dir)
    data: dict = {"hardware": hardware(), "load_average_start": load_average(), "video": str(video)}
    tmp = Path(tempfile.mkdtemp(prefix="bench-speed-", dir=ctx.work))
    from cmet.media import read_video

    frames, fps = read_video(video)
    vid_s = len(frames) / fps
    if ctx.quick:  # the smoke test edits a 1 s cut of the video
        video = looped_video(video, 1.0, tmp / "cut.mp4")
        vid_s = 1.0
    # 1. the whole edit, warm, repeated
    from cmet.config import compose

    cfg = compose([])
    t, stages = timed_edits(video, bundle, tmp / "out.mp4", s["repeats"], 1, cfg)
    data["edit"] = {
        "video_s": vid_s,
        "timing": t.__dict__,
        "stages_median_s": stages,
        "rtf": vid_s / t.median_s,
    }
    # cold run in a fresh interpreter: wall incl. imports + peak memory
    iso = run_isolated(_ISO_EDIT.format(video=str(video), bundle=str(bundle_dir), out=str(tmp / "cold.mp4")))
    data["edit_cold"] = iso
    # 2. vs video length
    lengths = []
    for sec in s["lengths"]:
        v = looped_video(rel / "asset" / "video" / "W009_038.mp4", sec, tmp / f"len{sec}.mp4")
        reps = 1 if sec >= 16 else s["repeats"]
        tt, st = timed_edits(v, bundle, tmp / f"len{sec}-out.mp4", reps, 0, cfg)
        lengths.append(
            dict(
                seconds=sec,
                timing=tt.__dict__,
                stages=st,
                rtf=sec / tt.median_s,
                per_video_s=tt.median_s / sec,
            )
        )
    data["lengths"] = lengths
    # 3. model stage vs number of emotion clips (precomputed features; the other stages do not depend on k)
    from bench.pixel import tracked_video

    codes = tracked_video(ctx)["neutral"]
    rng = np.random.default_rng(0)
    bank = bundle.bank("happy")
    kk = []
    for k in s["clip_counts"]:
        feats = bank[rng.integers(0, len(bank), k)]
        tk = time_it(lambda f=feats: bundle.predict_offsets(codes, f), repeats=max(3, s["repeats"]), warmup=1)
        kk.append(dict(k=int(k), timing=tk.__dict__))
    data["clips"] = kk
    # 4. training throughput, each model in a fresh interpreter
    release_features(ctx)
    feat_dir = str(ctx.state["release_fs_dir"])
    # (the whole release set's train split as built: W009 test, the rest train)
    tp = {}
    for model, steps in s["throughput_steps"].items():
        tp[model] = run_isolated(
            _ISO_TRAIN.format(model=model, features=feat_dir, batch=THROUGHPUT_BATCH, steps=steps)
        )
    data["train_throughput"] = tp
    data["pipeline"] = pipeline_time()
    data["load_average_end"] = load_average()

    e = data["edit"]
    t1 = md_table(
        ["figure", "ours (this machine)", "paper"],
        [
            [
                f"whole edit of the {vid_s:.0f} s real video (warm, median)",
                t.fmt(),
                f"AITV {PAPER_AITV} s (GPU)",
            ],
            [
                "real-time factor (video s / wall s)",
                f"{e['rtf']:.2f}x {'(faster than real time)' if e['rtf'] >= 1 else '(slower than real time)'}",
                "2.65x (7 s / 2.643 s, GPU; video length assumed)",
            ],
            ["cold edit in a fresh process (imports + model load)", f"{iso['wall_s']:.2f} s", "n/a"],
            ["peak memory of the cold edit", f"{iso['peak_rss_mb']:.0f} MiB", "n/a"],
        ],
    )
    t2 = md_table(
        ["stage", "median s", "share %"],
        [[k, f"{stages[k]:.3f}", f"{100 * stages[k] / t.median_s:.1f}"] for k in STAGES if k in stages],
    )
    t3 = md_table(
        ["video length s", "edit wall time", "s per video s", "real-time factor", "landmarks s", "render s"],
        [
            [
                x["seconds"],
                Timing(**x["timing"]).fmt(),
                f"{x['per_video_s']:.2f}",
                f"{x['rtf']:.2f}x",
                f"{x['stages'].get('landmarks', float('nan')):.2f}",
                f"{x['stages'].get('render', float('nan')):.2f}",
            ]
            for x in lengths
        ],
    )
    t4 = md_table(
        ["emotion clips k", "model stage (semantic vector + autoregressive offsets)"],
        [[x["k"], Timing(**x["timing"]).fmt()] for x in kk],
    )
    t5 = md_table(
        ["connector", "parameters", "samples/s (median step)", "step s (min-max)", "peak memory MiB"],
        [
            [
                m,
                f"{r['n_params']:,}",
                f"{r['samples_per_s']:.0f}",
                f"{r['step_s']:.3f} ({r['step_min_s']:.3f}-{r['step_max_s']:.3f}, n={r['steps']})",
                f"{r['peak_rss_mb']:.0f}",
            ]
            for m, r in tp.items()
        ],
    )
    p = data["pipeline"]
    if p.get("found"):
        lt = p["latest_default"] or p["latest"]
        ptxt = (
            f"{lt['seconds']:.0f} s (MLflow `pipeline_seconds` of run {lt['run_id'][:8]}, started {lt['start']}, "
            f"overrides: {lt['overrides']}; read from the store, not re-run here)"
        )
    else:
        ptxt = (
            f"not available: no pipeline run in the MLflow store (run `make run` first). {p.get('error', '')}"
        )
    md = f"""## {TITLE}

Measured on: {data["hardware"]}; {data["load_average_start"]} at the start,
{data["load_average_end"]} at the end (other work on the machine inflates every timing). Model: the
W009 fold's `cmet_small` bundle; target `happy` from the bundle's bank (precomputed emotion2vec+large
features); no GPU here (the paper's AITV is on a GPU).

{t1}

Per stage of the warm edit (median over {t.n} runs):

{t2}

Edit time vs video length (the real video looped forth and back; n per length in the timing):

{t3}

Model stage vs the number of emotion clips (the other stages do not depend on it):

{t4}

Training throughput (batch {THROUGHPUT_BATCH}, real-speech features D_a=1024, D_v=19, k=10; fresh process each):

{t5}

Pipeline wall time of `make run`: {ptxt}.
Goal: the edit of the 7 s video faster than real time on 2 CPU cores -> real-time factor
{e["rtf"]:.2f}x: {"met" if e["rtf"] >= 1 else "NOT met"} (under the load above).
Reproduce: {ctx.reproduce(NAME)}.
"""
    import shutil

    shutil.rmtree(tmp, ignore_errors=True)
    return Section(NAME, TITLE, md, json.loads(json.dumps(data, default=str)))
