"""Evaluate stage: C-MET and the baselines on the test identities, latency, an edited sample video, the
champion's metrics on the same evaluation set, and the promotion gate."""

from __future__ import annotations

import json
import logging
import shutil
import time
from pathlib import Path

from prefect import get_run_logger
from prefect.cache_policies import NO_CACHE

from cmet.errors import CmetError, ModelError
from flows.caching import cfg_of, key_fn, mark_done, stage_task
from flows.tracking import numeric_metrics

log = logging.getLogger(__name__)


def measure_latency(bundle, fs, n_frames: int) -> float:
    """Milliseconds per frame of C-MET inference on one test sequence of ``n_frames`` neutral codes."""
    import numpy as np

    test = fs.split("test") if (fs.clips["split"] == "test").any() else fs
    neu = test.clips.index[test.clips["emotion"] == "neutral"]
    i = int(neu[0]) if len(neu) else 0
    codes = test.frames(i)
    codes = np.resize(codes, (n_frames, codes.shape[1])).astype(np.float32)
    target = next(e for e in bundle.known_emotions if e != "neutral")
    bundle.predict_offsets(codes[:10], target)  # warm-up
    t0 = time.perf_counter()
    bundle.predict_offsets(codes, target)
    return 1000.0 * (time.perf_counter() - t0) / n_frames


def per_emotion_png(
    metrics: dict, path: Path, methods=("cmet", "speech_direct", "label", "reference")
) -> Path | None:
    """The per-emotion Acc_emo table (``acc_emo/<method>/<emotion>``) rendered as an image."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    emos = sorted({k.split("/")[-1] for k in metrics if k.startswith("acc_emo/cmet/")})
    methods = [m for m in methods if any(f"acc_emo/{m}/{e}" in metrics for e in emos)]
    if not emos or not methods:
        return None
    cells = [[f"{metrics.get(f'acc_emo/{m}/{e}', float('nan')):.3f}" for m in methods] for e in emos]
    cells.append([f"{metrics.get(f'acc_emo/{m}', float('nan')):.3f}" for m in methods])
    fig, ax = plt.subplots(figsize=(1.8 + 1.4 * len(methods), 0.45 * (len(emos) + 2)))
    ax.axis("off")
    ax.table(cellText=cells, rowLabels=[*emos, "all"], colLabels=methods, loc="center")
    ax.set_title("Acc_emo per target emotion (test identities)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def sample_video(cfg, bundle_dir: str, out_dir: Path) -> dict:
    """A short edited sample of the real MEAD video when media exist (``cmet.edit.edit_video``) and
    ``lips_kept``: the correlation of mouth opening, input vs edited output (landmarks re-tracked on
    the output, ``cmet.face.edit_measures.check_edit``), and ``identity_median``: the dlib descriptor
    distance edited vs input frame. Returns ``{}`` where the media are absent."""
    video = Path(str(cfg.paths.release_dir)) / "asset" / "video" / "W009_038.mp4"
    if not cfg.pipeline.sample_video or not video.is_file():
        return {}
    from cmet.edit import edit_video
    from cmet.face.edit_measures import check_edit

    out = out_dir / "edited_happy.mp4"
    try:
        res = edit_video(str(video), "happy", bundle=bundle_dir, out=str(out), cfg=cfg, max_seconds=2.0)
        chk = check_edit(str(video), res)
    except CmetError as e:
        log.warning("sample video skipped: %s", e)
        return {}
    from cmet import __version__
    from cmet.provenance import stamp, tags

    both = side_by_side(video, out, out_dir / "sample_happy.mp4", ("input", "edited: happy"))
    model = {"model": str(cfg.pipeline.registered_model), "version": "candidate"}
    for f in (out, both):
        stamp(Path(f), tags(model, res.target, 1.0, __version__))
    got = {"lips_kept": float(chk["mouth_corr"]), "identity_median": float(chk["identity_median"])}
    return {**got, **timeline_sample(cfg, bundle_dir, video, out_dir, model)}


#: the timeline of the MLflow sample (and of the README's example): three emotions over the clip
SAMPLE_TIMELINE = "0:happy, 2.5:sad, 5:surprised"


def timeline_sample(cfg, bundle_dir: str, video: Path, out_dir: Path, model: dict) -> dict:
    """The real clip edited along :data:`SAMPLE_TIMELINE` (``sample_timeline.mp4``, input | edit) with
    its measures (``cmet.face.edit_measures.check_timeline``: ``timeline.json``, ``timeline_strip.png``,
    ``timeline_codes.png``) -> the transition figure ``timeline_step_ratio`` (largest per-frame code
    change inside a transition / the input's largest); {} when it cannot be made."""
    from cmet import __version__
    from cmet.edit import edit_video
    from cmet.face.edit_measures import check_timeline
    from cmet.provenance import stamp, tags
    from cmet.timeline_parse import parse_timeline

    tl = parse_timeline(SAMPLE_TIMELINE)
    out = out_dir / "edited_timeline.mp4"
    try:
        res = edit_video(str(video), tl, bundle=bundle_dir, out=str(out), cfg=cfg)
        chk = check_timeline(video, res, tl, out_dir)
    except CmetError as e:
        log.warning("timeline sample skipped: %s", e)
        return {}
    both = side_by_side(
        video, out, out_dir / "sample_timeline.mp4", ("input", f"timeline: {SAMPLE_TIMELINE}")
    )
    for f in (out, both):
        stamp(Path(f), tags(model, res.target, 1.0, __version__, timeline=res.target))
    (out_dir / "timeline.json").write_text(json.dumps(chk, indent=1))
    return {"timeline_step_ratio": chk["transition_code_step_max"] / max(chk["input_code_step_max"], 1e-9)}


def side_by_side(before: Path, after: Path, dst: Path, labels: tuple[str, str]) -> Path:
    """``before`` | ``after`` in one video (the length of ``after``), each half labelled, with the
    audio of ``after``."""
    import cv2
    import numpy as np

    from cmet.media import read_video, write_video

    b, fps = read_video(after)
    a, _ = read_video(before, max_seconds=len(b) / fps + 1.0)
    n = min(len(a), len(b))
    if a.shape[1:3] != b.shape[1:3]:
        a = np.stack([cv2.resize(f, (b.shape[2], b.shape[1])) for f in a[:n]])
    both = np.concatenate([a[:n], b[:n]], axis=2).copy()
    scale = max(0.4, b.shape[1] / 500)
    for i in range(n):
        for x, text in ((8, labels[0]), (b.shape[2] + 8, labels[1])):
            cv2.putText(
                both[i], text, (x, int(24 * scale) + 4), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 2
            )
    return write_video(dst, both, fps, audio_from=after)


@stage_task(name="evaluate", cache_key_fn=key_fn("out_root", "key"))
def evaluate_bundle(
    cfg_dict: dict, bundle_dir: str, fs_dir: str, key: str, out_root: str, train_metrics: dict | None = None
) -> dict:
    """C-MET and the baselines on the test identities, plus latency -> metrics and figures.

    ``cmet.train.train`` already ends with ``cmet.evaluate.evaluate`` on the same features and config;
    its metrics are reused when present (same evaluation), else the bundle is evaluated here.
    """
    from cmet.data.features import FeatureSet
    from cmet.model.bundle import ModelBundle

    cfg = cfg_of(cfg_dict)
    out = Path(out_root) / key
    out.mkdir(parents=True, exist_ok=True)
    fs = FeatureSet.load(fs_dir)
    bundle = ModelBundle.load(bundle_dir)
    if train_metrics and "acc_emo/cmet" in train_metrics:
        metrics = dict(train_metrics)
        for png in Path(bundle_dir).parent.glob("confusion_matrix*.png"):
            shutil.copy(png, out / png.name)
    else:
        from cmet.evaluate import evaluate

        metrics = dict(evaluate(bundle, fs, cfg, out))
    metrics["latency_ms_per_frame"] = measure_latency(bundle, fs, int(cfg.pipeline.latency_frames))
    metrics.update(sample_video(cfg, bundle_dir, out))
    metrics = numeric_metrics(metrics)
    per_emotion_png(metrics, out / "per_emotion_acc.png")
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    mark_done(out)
    return {"metrics": metrics, "dir": str(out)}


def champion_metrics(cfg, name: str, eval_hash: str, fs_dir: str) -> tuple[str | None, dict | None]:
    """The current champion's metrics on *this* evaluation set: from its tags when it was evaluated on
    the same set (same hash), else re-evaluated here from its registered bundle."""
    import tempfile

    from cmet.data.features import FeatureSet
    from cmet.evaluate import evaluate
    from cmet.model.bundle import ModelBundle
    from flows import registry as R

    c = R.client(cfg.pipeline.tracking_uri or None)
    v = R.alias_version(c, name, R.CHAMPION)
    if v is None:
        return None, None
    tags = c.get_model_version(name, v).tags or {}
    if tags.get("eval_hash") == eval_hash:
        return v, {k[len("metric.") :]: float(x) for k, x in tags.items() if k.startswith("metric.")}
    with tempfile.TemporaryDirectory(prefix="cmet-champion-") as tmp:
        try:
            bundle = ModelBundle.load(R.fetch_bundle(name, v, Path(tmp) / "bundle", c))
        except ModelError:
            return v, None
        fs = FeatureSet.load(fs_dir)
        m = dict(evaluate(bundle, fs, cfg, Path(tmp) / "eval"))
        m["latency_ms_per_frame"] = measure_latency(bundle, fs, int(cfg.pipeline.latency_frames))
    return v, numeric_metrics(m)


@stage_task(name="gate", cache_policy=NO_CACHE)
def gate(cfg_dict: dict, metrics: dict, eval_hash: str, fs_dir: str) -> dict:
    """The promotion gates (:mod:`flows.gates`) of the candidate against the champion -> report."""
    from flows.gates import evaluate_gates

    cfg = cfg_of(cfg_dict)
    v, champ = champion_metrics(cfg, str(cfg.pipeline.registered_model), eval_hash, fs_dir)
    rep = evaluate_gates(metrics, cfg.gates, champ, v)
    (get_run_logger().info if rep.passed else get_run_logger().warning)(rep.summary())
    return {
        "passed": rep.passed,
        "report": rep.to_dict(),
        "tags": rep.tags(),
        "summary": rep.summary(),
        "champion_before": v,
        "champion_metrics": champ,
    }


def evaluate_and_gate(cfg, train_res: dict, fs_dir: str, data_hash: str) -> tuple[dict, dict, str]:
    """evaluate (content-addressed, cached) -> gate. Returns ``(eval result, gate result, eval hash)``."""
    from omegaconf import OmegaConf

    from cmet.hashing import hash_obj
    from flows.caching import eval_hash, fresh

    cd = OmegaConf.to_container(cfg, resolve=True)
    ev_hash = eval_hash(cfg, data_hash)
    key, root = hash_obj([ev_hash, train_res["bundle_hash"]]), Path(str(cfg.paths.cache_dir)) / "eval"
    eval_res = fresh(evaluate_bundle, root, key)(
        cd, train_res["bundle"], fs_dir, key, str(root), train_res["metrics"]
    )
    return eval_res, gate(cd, eval_res["metrics"], ev_hash, fs_dir), ev_hash
