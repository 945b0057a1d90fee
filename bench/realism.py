"""Section ``realism``: do the edits look real? (mouth interior, identity, flicker, speed)

``asset/video/W009_038.mp4`` is edited to every basic emotion with the W009 fold's C-MET model (the
stages of :func:`cmet.edit.edit_video`, as in section ``pixel``), every frame rendered; then, per
emotion (:mod:`cmet.face.realism`):

* mouth-interior colour distance: HSV histogram (12x8x8) of the FaceMesh inner-lip polygon on the
  frames where the input's mouth is open, Bhattacharyya distance edited vs input (input vs itself 0);
* identity: dlib face-recognition ResNet descriptor distance, edited frame vs the same input frame
  (every 5th frame), median; beside it the natural variation inside the input (frames 2 s apart);
* flicker ratio: mean frame-to-frame change of the face outside the mouth, edit / input;
* sharpness ratio: variance of the Laplacian of the lips' box, edit / input, open-mouth frames (a
  second resampling or a blurred interior lowers it); teeth stretch: the horizontal scale of the
  upper teeth against the same input frame (1 = rigid; a warp that widens them with a smile ~1.4);
* folds: the share of frames whose AU warp folded a triangle over its neighbours (a hard drawn
  edge, doubled skin), and of frames still so after the renderer's :class:`cmet.face.warp.Unfolder`;
* the render stage's time per frame;
* the frontier: identity vs the FER judge's Acc_emo as the renderer's gain grows (``face.render_gain``
  0.6 ... 1.6): what the warp pays in identity for an expression the judge reads.

The same measures (and the FER judge) on a 1920x1080 clip of the video edited through the product
path (:func:`measure_hd`), and per portrait of ``asset/identity/`` identity, sharpness and the spread
of the opened mouth's grey levels (:func:`portrait_measures`).

Beside the identity figures, the same person in another MEAD recording
(``asset/identity/W009_001_identity_source.jpg``) against the input frames.

Images: ``realism_sheet.png`` -- before/after of every emotion on the video (an open-mouth frame),
on the 1080p clip and on three portraits; ``realism_frontier.png`` -- the frontier. ``python -m bench.realism --bundle DIR`` runs it with any bundle.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from bench.common import md_table
from bench.context import VIDEO_SPEAKER, Ctx, Section, Skip, trained_runs

NAME = "realism"
TITLE = "Realism: mouth interior, identity and flicker of the edits"
BASIC = ("angry", "contempt", "disgusted", "fear", "happy", "sad", "surprised")
PORTRAITS = ("W015_001_identity_source.jpg", "ChatGPT_woman_crop.png", "ChatGPT_man2_crop.png")
#: the realism bars (issue 24, set for W009_038 -> happy): at most ...
TARGETS = {"mouth_colour": 0.20, "identity_median": 0.40, "flicker": 1.2}
#: ... and at least
FLOORS = {"sharpness": 0.80}


def track(frames: np.ndarray, name: str) -> np.ndarray:
    from cmet.face.landmarks import FaceMesh

    return FaceMesh().track(frames, name=name)


def edit_frames(v: dict, bundle, emotion: str, face, stats: dict | None = None) -> tuple[np.ndarray, float]:
    """All frames of the tracked video ``v`` (bench.pixel.tracked_video) edited to ``emotion``:
    ([T, H, W, 3] uint8, render seconds per frame); ``stats``: the renderer's fold counts."""
    from bench.pixel import render_frames, smooth

    off = smooth(bundle.predict_offsets(v["neutral"], emotion), v["fps"], face)
    t = time.perf_counter()
    out = render_frames(v, off, np.arange(len(v["frames"])), face, stats)
    return out, (time.perf_counter() - t) / len(out)


def judge_share(judge, frames: np.ndarray, box, emotion: str) -> float | None:
    """FER judge: share of frames [N, H, W, 3] whose top-1 is ``emotion`` (None: no such class)."""
    from cmet.face.judge import EMOTION_TO_LABEL

    if emotion not in EMOTION_TO_LABEL:
        return None
    return float(np.mean([t == EMOTION_TO_LABEL[emotion] for t in judge(frames, box=box).top1]))


#: the same speaker in another MEAD recording (the release's identity image of W009)
OTHER_RECORDING = "W009_001_identity_source.jpg"


def other_recording(ref, release: Path | None) -> float | None:
    """Median descriptor distance of the W009 identity image of ``release`` (another recording of the
    same person) to the input frames of ``ref`` (:class:`cmet.face.identity.Reference`); None without
    the file."""
    import cv2

    from cmet.face.identity import descriptor, face_box

    path = None if release is None else Path(release) / "asset" / "identity" / OTHER_RECORDING
    if path is None or not path.is_file():
        return None
    img = cv2.imread(str(path))[:, :, ::-1].copy()
    return float(np.median(np.linalg.norm(ref.desc - descriptor(img, face_box(img)), axis=1)))


def mouth_detail(frames_in, lm_in, frames_out, lm_out) -> dict:
    """Sharpness ratio and teeth stretch of an edit (:mod:`cmet.face.realism`) on the input's open frames."""
    from cmet.face.realism import sharpness_ratio, teeth_stretch

    sharp, n_sharp = sharpness_ratio(frames_in, lm_in, frames_out, lm_out)
    stretch, n_teeth = teeth_stretch(frames_in, lm_in, frames_out, lm_out)
    return {"sharpness": round(sharp, 4), "teeth_stretch": round(stretch, 4), "n_teeth": n_teeth}


#: the 1080p clip of the realism section: W009_038 scaled to 60 % of the height on a 1920x1080 frame
#: (bench.video.make_clip), edited through the product path (cmet.edit.edit_video), this long (s)
HD_SECONDS = 2.4


def measure_hd(
    release: Path, bundle_dir: Path, cfg, work: Path, emotions=BASIC, seconds: float = HD_SECONDS
) -> dict:
    """Each emotion's edit of a 1920x1080 clip of W009_038 through :func:`cmet.edit.edit_video` (the
    face read once at the frame's resolution): sharpness, teeth stretch, mouth colour, identity, FER
    -> {"edits": {emotion: dict}, "input_vs_itself": dict, "frames": n, "sheet": {emotion: face crop}}."""
    import tempfile

    from bench.video import make_clip
    from cmet.edit import edit_video
    from cmet.face.identity import Reference
    from cmet.face.judge import Judge
    from cmet.face.realism import measure
    from cmet.media import read_video

    work.mkdir(parents=True, exist_ok=True)
    clip = make_clip(
        release / "asset/video/W009_038.mp4", 1920, 1080, seconds, work / f"realism_1080_{seconds:g}s.mp4"
    )
    frames, _ = read_video(clip)
    lm_in = track(frames, "1080p clip")
    idx = np.arange(0, len(frames), 5)
    ref = Reference.of(frames[idx], lm_in[idx])
    judge = Judge(str(cfg.face.get("judge_backend", "tflite")))
    box = judge.face_box(frames[0], "1080p clip frame 0")
    k = sheet_index(lm_in)
    crop = face_crop(lm_in[k])
    res = {"frames": int(len(frames)), "edits": {}, "sheet": {"input": frames[k][crop]}}
    self_check = measure(frames, lm_in, frames, lm_in, 5, ref).to_dict()
    self_check.update(mouth_detail(frames, lm_in, frames, lm_in))
    res["input_vs_itself"] = self_check
    with tempfile.TemporaryDirectory() as tmp:
        for e in emotions:
            out_path = Path(tmp) / f"{e}.mp4"
            edit_video(clip, e, bundle=bundle_dir, cfg=cfg, out=out_path, threads=1)
            out, _ = read_video(out_path)
            out = out[: len(frames)]
            lm_out = track(out, f"1080p edit {e}")
            r = measure(frames, lm_in, out, lm_out, 5, ref).to_dict()
            r.update(mouth_detail(frames, lm_in, out, lm_out))
            r["judge_acc"] = judge_share(judge, out[::2], box, e)
            res["edits"][e] = r
            res["sheet"][e] = out[k][crop]
            del out
    return res


def hd_work() -> Path:
    """Where the 1080p clip is made once (inside the project's working folder)."""
    return Path(__file__).resolve().parents[1] / ".cmet" / "cache" / "bench"


def sheet_index(lm: np.ndarray) -> int:
    """The most open mouth in the middle half of a landmark track [T, 468, 3]."""
    from cmet.face.landmarks import mouth_opening

    T = len(lm)
    lo, hi = T // 4, max(T // 4 + 1, 3 * T // 4)
    return lo + int(np.argmax(mouth_opening(lm[lo:hi])))


def face_crop(lm: np.ndarray, scale: float = 1.3) -> tuple[slice, slice]:
    """A square around the face of landmarks [468, >=2] (for the contact sheet)."""
    lo, hi = lm[:, :2].min(0), lm[:, :2].max(0)
    c, half = (lo + hi) / 2, scale * float((hi - lo).max()) / 2
    x0, y0 = int(max(0, c[0] - half)), int(max(0, c[1] - half))
    return slice(y0, int(c[1] + half)), slice(x0, int(c[0] + half))


def portrait_measures(release: Path, rows: list[list[np.ndarray]], emotions=BASIC) -> dict:
    """Per portrait and emotion (the rows of :func:`portrait_rows`): dlib identity distance edit vs
    portrait, sharpness of the lips' box (edit / portrait), the new mouth's interior: pixels and the
    spread of its grey levels (a flat bar has none)."""
    from cmet.face.au_fields import INNER_LIP_CONTOUR
    from cmet.face.identity import Reference
    from cmet.face.landmarks import FaceMesh
    from cmet.face.realism import laplacian_variance, lip_box, polygon_mask

    fm = FaceMesh()
    out = {}
    for name, row in zip(PORTRAITS, rows, strict=True):
        img = row[0]
        lm = fm.mesh(img, name)
        ref = Reference.of(img[None], lm[None])
        base = laplacian_variance(img, lip_box(lm, img.shape[:2], 0.15))
        per = {}
        for e, ed in zip(emotions, row[1:], strict=True):
            lm_e = fm.mesh(ed, f"{name} {e}")
            inner = polygon_mask(ed.shape[:2], lm_e[INNER_LIP_CONTOUR])
            grey = ed[inner].astype(np.float32).mean(-1) if inner.any() else np.zeros(0)
            per[e] = {
                "identity": round(float(ref.distances(ed[None])[0]), 4),
                "sharpness": round(
                    laplacian_variance(ed, lip_box(lm_e, ed.shape[:2], 0.15)) / max(base, 1e-6), 4
                ),
                "interior_px": int(inner.sum()),
                "interior_grey_sd": round(float(grey.std()) if len(grey) else 0.0, 2),
            }
        out[name] = per
    return out


def measure_video(
    v: dict,
    bundle,
    face,
    emotions=BASIC,
    progress: bool = True,
    judge_stride: int = 2,
    release: Path | None = None,
) -> dict:
    """Realism figures of each emotion's edit of the tracked video ``v`` -> {emotion: dict, ...}
    (with the FER judge's Acc_emo on every ``judge_stride``-th frame, as section ``pixel``; with
    ``release``, the identity reference of :func:`other_recording`)."""
    from cmet.face.identity import Reference, natural_variation
    from cmet.face.judge import Judge
    from cmet.face.realism import measure

    frames, lm_in = v["frames"], v["tracks"]
    stride = 5
    idx = np.arange(0, len(frames), stride)
    ref = Reference.of(frames[idx], lm_in[idx])
    nat = natural_variation(frames, v["fps"], 2.0, lm_in)
    self_check = measure(frames, lm_in, frames, lm_in, stride, ref).to_dict()
    self_check.update(mouth_detail(frames, lm_in, frames, lm_in))
    res = {"natural_identity_median": float(np.median(nat)), "input_vs_itself": self_check}
    other = other_recording(ref, release)
    if other is not None:
        res["other_recording_identity_median"] = other
    judge = Judge(str(face.get("judge_backend", "tflite")))
    box = judge.face_box(frames[0], "W009_038.mp4 frame 0")
    jidx = np.arange(0, len(frames), judge_stride)
    edits = {}
    for e in emotions:
        stats: dict = {}
        out, spf = edit_frames(v, bundle, e, face, stats)
        lm_out = track(out, f"edit {e}")
        r = measure(frames, lm_in, out, lm_out, stride, ref).to_dict()
        r.update(mouth_detail(frames, lm_in, out, lm_out))
        r["render_s_per_frame"] = round(spf, 4)
        if stats.get("frames"):  # share of frames whose AU warp folded a triangle, and after the Unfolder
            r["folds_warp"] = stats["folded_warp"] / stats["frames"]
            r["folds_left"] = stats["folded_left"] / stats["frames"]
        r["judge_acc"] = judge_share(judge, out[jidx], box, e)
        edits[e] = r
        v.setdefault("edits", {})[e] = out[sheet_frame(v)]
        if progress:
            print(f"realism {e}: {r}", flush=True)
    res["edits"] = edits
    return res


#: render gains of the identity/FER frontier (1.0 = the FACS apex fields; the default is face.render_gain)
FRONTIER_GAINS = (0.6, 1.0, 1.3, 1.6)


def frontier(
    v: dict, bundle, face, gains=FRONTIER_GAINS, emotions=BASIC, stride: int = 10, judge_stride: int = 4
) -> dict:
    """Identity vs FER as the renderer's gain grows: each emotion's edit of the tracked video ``v``
    rendered at each ``face.render_gain`` in ``gains`` -> {"gains": [...], "rows": [{gain, emotion,
    identity_median, judge_acc}, ...], "all": [{gain, identity_worst, judge_acc}, ...]} (``all``: the
    worst emotion's identity median, as the target is for every emotion, and the mean FER share).

    What a warp renderer pays in identity for an expression the FER judge reads (identity on every
    ``stride``-th frame, the judge on every ``judge_stride``-th)."""
    from omegaconf import OmegaConf

    from bench.pixel import render_frames, smooth
    from cmet.face.identity import Reference
    from cmet.face.judge import Judge

    frames = v["frames"]
    idx, jidx = np.arange(0, len(frames), stride), np.arange(0, len(frames), judge_stride)
    need = np.union1d(idx, jidx)
    ref = Reference.of(frames[idx], v["tracks"][idx])
    judge = Judge(str(face.get("judge_backend", "tflite")))
    box = judge.face_box(frames[0], "W009_038.mp4 frame 0")
    rows, agg = [], []
    for g in gains:
        fg = OmegaConf.merge(face, {"render_gain": float(g)})
        ids, accs = [], []
        for e in emotions:
            off = smooth(bundle.predict_offsets(v["neutral"], e), v["fps"], fg)
            # every frame up to the last needed one is rendered (the renderer's temporal state)
            out = render_frames(v, off, np.arange(int(need[-1]) + 1), fg)
            idm = float(np.median(ref.distances(out[idx])))
            acc = judge_share(judge, out[jidx], box, e)
            rows.append(dict(gain=float(g), emotion=e, identity_median=idm, judge_acc=acc))
            ids.append(idm)
            if acc is not None:
                accs.append(acc)
        agg.append(dict(gain=float(g), identity_worst=float(np.max(ids)), judge_acc=float(np.mean(accs))))
    return {"gains": [float(g) for g in gains], "rows": rows, "all": agg}


def frontier_plot(fr: dict, path: Path, targets=(0.30, 0.56)) -> Path:
    """Each emotion's (identity median, FER share) per gain, all emotions together (the worst
    identity, the mean FER share) and the issue's targets."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from cmet.plots import save_figure

    fig, ax = plt.subplots(figsize=(6.4, 4.6))
    for e in dict.fromkeys(r["emotion"] for r in fr["rows"]):
        pts = [(r["identity_median"], r["judge_acc"], r["gain"]) for r in fr["rows"] if r["emotion"] == e]
        if pts[0][1] is None:
            continue
        ax.plot([p[0] for p in pts], [100 * p[1] for p in pts], "o-", ms=3, lw=1, label=e)
    m = fr["all"]
    ax.plot([p["identity_worst"] for p in m], [100 * p["judge_acc"] for p in m], "ks-", lw=2,
            label="all: worst identity,\nmean FER")  # fmt: skip
    for p in m:
        ax.annotate(f"gain {p['gain']:g}", (p["identity_worst"], 100 * p["judge_acc"]), fontsize=7,
                    xytext=(4, -10), textcoords="offset points")  # fmt: skip
    ax.axvline(targets[0], color="grey", ls="--", lw=1)
    ax.axhline(100 * targets[1], color="grey", ls="--", lw=1)
    ax.fill_between([0, targets[0]], 100 * targets[1], 100, color="green", alpha=0.08, label="targets met")
    ax.set_xlim(0, 0.65)
    ax.set_ylim(0, 100)
    ax.set_xlabel("identity distance, median (dlib; edit vs same input frame)")
    ax.set_ylabel("FER judge Acc_emo (%)")
    ax.set_title("Warp renderer: identity vs expression, W009_038", fontsize=10)
    ax.legend(fontsize=7, loc="lower right")
    return save_figure(fig, path)


def portrait_rows(release: Path, bundle, face, emotions=BASIC, n_frames: int = 25) -> list[list[np.ndarray]]:
    """Three portraits held still, each emotion's offsets predicted on their (neutral) codes and the
    last frame rendered: one row [unedited, *emotions] per portrait."""
    import cv2

    from bench.pixel import smooth
    from cmet.face.expression import canonical
    from cmet.face.facs import D_EXPR
    from cmet.face.landmarks import FaceMesh
    from cmet.face.render import make_renderer

    fm = FaceMesh()
    rows = []
    for name in PORTRAITS:
        img = cv2.imread(str(release / "asset" / "identity" / name))[:, :, ::-1].copy()
        lm = fm.mesh(img, name)
        rend = make_renderer(face, canonical(lm), img.shape[:2])
        row = [img]
        for e in emotions:
            off = smooth(bundle.predict_offsets(np.zeros((n_frames, D_EXPR), np.float32), e), 25.0, face)
            row.append(rend.render(img, lm, np.clip(off[-1], 0.0, 2.0)))
        rows.append(row)
    return rows


#: held-out driving speech of the portrait check (W009: never in the lip model's training)
SPEECH = ("neutral/W009_005.wav", "happy/W009_level_3_002.wav", "angry/W009_level_3_005.wav")


def portrait_speech(release: Path, face, clips=SPEECH, portraits=PORTRAITS) -> dict:
    """Portrait + driving speech: each portrait rendered with the lip model's jaw track
    (:mod:`cmet.face.portrait_lips`) for each clip, FaceMesh re-run on the frames; Pearson r of the
    tracked mouth opening with the speech envelope (and the mean frame-to-frame mouth change)."""
    import cv2

    from cmet.audio import load_audio
    from cmet.face.expression import canonical
    from cmet.face.facs import D_EXPR
    from cmet.face.landmarks import FaceMesh, mouth_opening
    from cmet.face.portrait_lips import LipModel
    from cmet.face.render import make_renderer
    from cmet.face.tracks import envelope_at_fps

    fm, model = FaceMesh(), LipModel.default()
    rows = []
    for name in portraits:
        img = cv2.imread(str(release / "asset" / "identity" / name))[:, :, ::-1].copy()
        lm = fm.mesh(img, name)
        rend = make_renderer(face, canonical(lm), img.shape[:2])
        zero = np.zeros(D_EXPR, np.float32)
        for clip in clips:
            wave, _ = load_audio(release / "audios" / "MEAD" / clip, 16_000)
            n = int(len(wave) / 16_000 * 25)
            jaw = model.from_speech(wave, 16_000, n, 25.0)
            frames = np.stack([rend.render(img, lm, zero, float(j)) for j in jaw])
            mo = mouth_opening(fm.track(frames, name=f"{name} + {clip}"))
            env = envelope_at_fps(wave, 16_000, n, 25.0)
            change = float(np.abs(np.diff(frames.astype(np.float32), axis=0)).mean())
            rows.append(dict(portrait=name, clip=clip, r=float(np.corrcoef(mo, env)[0, 1]), change=change))
    return {"pairs": rows, "median_r": float(np.median([r["r"] for r in rows]))}


def contact_sheet(rows: list[list[np.ndarray]], labels: list[str], path: Path, size: int = 160) -> Path:
    """Rows of images -> one PNG, every tile ``size`` px, column labels on top."""
    import cv2

    tiles = [[cv2.resize(im, (size, size), interpolation=cv2.INTER_AREA) for im in r] for r in rows]
    head = np.full((22, size * len(labels), 3), 255, np.uint8)
    for k, lab in enumerate(labels):
        cv2.putText(head, lab, (k * size + 4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    sheet = np.concatenate([head, *[np.concatenate(r, 1) for r in tiles]], 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), sheet[:, :, ::-1])
    return path


def sheet_frame(v: dict) -> int:
    """The frame of the contact sheet: the most open mouth in the middle half of the video."""
    from cmet.face.landmarks import mouth_opening

    n = len(v["tracks"])
    return n // 4 + int(np.argmax(mouth_opening(v["tracks"][n // 4 : max(n // 4 + 1, 3 * n // 4)])))


def sheet_for(v: dict, res: dict, release: Path, bundle, face, out: Path) -> Path:
    """The before/after contact sheet: the video's most open frame, then three portraits."""
    emotions = list(res["edits"])
    rows = [[v["frames"][sheet_frame(v)]] + [v["edits"][e] for e in emotions]]
    hd = res.get("hd", {}).get("sheet")
    if hd:
        rows.append([hd["input"]] + [hd[e] for e in emotions])
    prow = portrait_rows(release, bundle, face, tuple(emotions))
    res["portraits"] = portrait_measures(release, prow, tuple(emotions))
    rows += prow
    return contact_sheet(rows, ["input", *emotions], out / "realism_sheet.png")


def markdown(res: dict, ctx_line: str) -> str:
    rows = []
    for e, r in res["edits"].items():
        ok = all(r[k] <= t for k, t in TARGETS.items()) and all(r.get(k, 0) >= t for k, t in FLOORS.items())
        rows.append(
            [
                e,
                f"{r.get('sharpness', float('nan')):.2f}",
                f"{r.get('teeth_stretch', float('nan')):.3f}",
                f"{r['mouth_colour']:.3f}",
                f"{r['identity_median']:.3f} (p90 {r['identity_p90']:.3f})",
                f"{r['flicker']:.2f}",
                "n/a"
                if "folds_warp" not in r
                else f"{100 * r['folds_warp']:.0f} -> {100 * r['folds_left']:.0f}",
                f"{1000 * r['render_s_per_frame']:.0f}",
                "n/a" if r.get("judge_acc") is None else f"{100 * r['judge_acc']:.0f}",
                "met" if ok else "NOT met",
            ]
        )
    t = md_table(
        [
            "emotion",
            "sharpness edit/input (>= 0.80)",
            "teeth stretch (1 = rigid)",
            "mouth colour dist. (<= 0.20)",
            "identity median (<= 0.40)",
            "flicker (<= 1.2)",
            "frames with a folded triangle %: warp -> rendered",
            "render ms/frame",
            "FER Acc_emo %",
            "targets",
        ],
        rows,
    )
    accs = [r["judge_acc"] for r in res["edits"].values() if r.get("judge_acc") is not None]
    acc_line = (
        f"FER judge Acc_emo over the {len(accs)} judged emotions (no contempt class): "
        f"{100 * np.mean(accs):.1f}% (per emotion in the table)."
        if accs
        else ""
    )
    ps = res.get("portrait_speech")
    ps_line = (
        f"Portrait + driving speech ({len(ps['pairs'])} pairs: {len(PORTRAITS)} portraits x held-out W009 "
        f"clips, the jaw from :mod:`cmet.face.portrait_lips`): tracked mouth opening vs speech envelope, "
        f"median r = {ps['median_r']:.2f} (target >= 0.6; per pair in the JSON)."
        if ps
        else ""
    )
    fr = res.get("frontier")
    fr_line = ""
    if fr:
        cells = ", ".join(
            f"gain {p['gain']:g}: worst identity {p['identity_worst']:.3f} / FER {100 * p['judge_acc']:.1f}%"
            for p in fr["all"]
        )
        fr_line = (
            "Identity vs expression as the renderer's gain grows (`face.render_gain`; 1.0 = the FACS apex "
            f"fields, the default {fr.get('default_gain', 1.6):g}): the worst emotion's identity median "
            f"(every 10th frame) and the mean FER Acc_emo (every 4th frame): {cells}. "
            "Image: [realism_frontier.png](realism_frontier.png)."
        )
    hd_block = hd_markdown(res["hd"]) if res.get("hd") else ""
    pt_block = portraits_markdown(res["portraits"]) if res.get("portraits") else ""
    s = res["input_vs_itself"]
    other = res.get("other_recording_identity_median")
    other_line = (
        ""
        if other is None
        else f" the same person in another MEAD recording ({OTHER_RECORDING}): {other:.3f};"
    )
    return f"""## {TITLE}

{ctx_line}
Input vs itself: mouth colour {s["mouth_colour"]:.3f} on {s["n_open"]} open-mouth frames, identity
{s["identity_median"]:.3f}, flicker {s["flicker"]:.2f}. Natural identity variation inside the input
(frames 2 s apart): median {res["natural_identity_median"]:.3f};{other_line} dlib's same-person threshold 0.6.

{t}

{acc_line}

{ps_line}

{fr_line}

{hd_block}

{pt_block}

Images: [realism_sheet.png](realism_sheet.png) (rows: the video's most open frame, the 1080p clip's face,
three portraits; columns: input, then each emotion).
"""


def hd_markdown(hd: dict) -> str:
    rows = [
        [
            e,
            f"{r['sharpness']:.2f}",
            f"{r['teeth_stretch']:.3f}",
            f"{r['mouth_colour']:.3f}",
            f"{r['identity_median']:.3f}",
            "n/a" if r.get("judge_acc") is None else f"{100 * r['judge_acc']:.0f}",
        ]
        for e, r in hd["edits"].items()
    ]
    t = md_table(
        ["emotion", "sharpness", "teeth stretch", "mouth colour", "identity median", "FER Acc_emo %"], rows
    )
    return f"""### The same person at 1920x1080 (the product path)

`W009_038.mp4` scaled to 60 % of the height on a 1920x1080 frame ({hd["frames"]} frames), each emotion
edited by `cmet.edit.edit_video` (the face worked out in a working-size crop, the frame read once at its
own resolution):

{t}"""


def portraits_markdown(pt: dict) -> str:
    rows = []
    for name, per in pt.items():
        for e, r in per.items():
            rows.append(
                [
                    name,
                    e,
                    f"{r['identity']:.3f}",
                    f"{r['sharpness']:.2f}",
                    str(r["interior_px"]),
                    f"{r['interior_grey_sd']:.1f}",
                ]
            )
    t = md_table(
        ["portrait", "emotion", "identity", "sharpness", "mouth interior px", "interior grey s.d."], rows
    )
    return f"""### Portraits (no footage of the mouth: the modelled interior in the person's own colours)

Identity: dlib distance edit vs the portrait; sharpness: the lips' box, edit / portrait; the opened
mouth's interior: its pixels and the spread of its grey levels (a flat bar has next to none).

{t}"""


def run(ctx: Ctx) -> Section:
    from bench.pixel import tracked_video
    from cmet.config import compose
    from cmet.model.bundle import ModelBundle

    rel = ctx.need_release()
    runs = trained_runs(ctx, ("full",))
    if (VIDEO_SPEAKER, "full") not in runs:
        raise Skip(f"the {VIDEO_SPEAKER} fold is not among the trained folds {ctx.s['folds']}")
    bundle = ModelBundle.load(runs[(VIDEO_SPEAKER, "full")]["bundle_dir"])
    face = compose([]).face
    v = tracked_video(ctx)
    res = measure_video(v, bundle, face, progress=False, release=rel)
    cfg = compose([])
    res["hd"] = measure_hd(rel, Path(runs[(VIDEO_SPEAKER, "full")]["bundle_dir"]), cfg, hd_work())
    res["portrait_speech"] = portrait_speech(rel, face)
    sheet_for(v, res, rel, bundle, face, ctx.out)
    res["hd"].pop("sheet", None)
    res["frontier"] = frontier(v, bundle, face)
    res["frontier"]["default_gain"] = float(face.render_gain)
    frontier_plot(res["frontier"], ctx.out / "realism_frontier.png")
    line = (
        f"Measured on `asset/video/W009_038.mp4` ({len(v['frames'])} frames), the {VIDEO_SPEAKER} fold's "
        f"C-MET model (W009 never in training). Reproduce: {ctx.reproduce(NAME)}."
    )
    return Section(NAME, TITLE, markdown(res, line), res)


def measure_edit(edited: Path, emotion: str | None, release: Path, source: Path | None = None) -> dict:
    """The realism figures of an edit already made (e.g. by ``cmet edit``) against its input (default
    ``asset/video/W009_038.mp4``): sharpness, teeth stretch, mouth colour, identity, flicker and, for
    a judged emotion, the FER judge's share on every 2nd frame."""
    from cmet.face.judge import EMOTION_TO_LABEL, Judge
    from cmet.face.realism import measure
    from cmet.media import read_video

    src = source or release / "asset/video/W009_038.mp4"
    frames, _ = read_video(src)
    out, _ = read_video(edited)
    n = min(len(frames), len(out))
    frames, out = frames[:n], out[:n]
    lm_in, lm_out = track(frames, src.name), track(out, Path(edited).name)
    r = measure(frames, lm_in, out, lm_out).to_dict()
    r.update(mouth_detail(frames, lm_in, out, lm_out))
    if emotion in EMOTION_TO_LABEL:
        judge = Judge("tflite")
        r["judge_acc"] = round(judge_share(judge, out[::2], judge.face_box(frames[0], src.name), emotion), 4)
    return r


def main(argv: list[str] | None = None) -> int:
    """``python -m bench.realism --bundle DIR [--emotions happy,sad] [--out DIR]``, or
    ``python -m bench.realism --measure EDIT.mp4 [--emotion happy] [--source IN.mp4]``."""
    import argparse

    from bench.common import RESULTS
    from bench.context import find_release
    from cmet.config import compose
    from cmet.model.bundle import ModelBundle

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bundle")
    ap.add_argument(
        "--measure", help="an edit already made of --source (default W009_038.mp4): print its figures"
    )
    ap.add_argument("--emotion", help="with --measure: the target (the FER judge's share)")
    ap.add_argument("--source", help="with --measure: the edit's input video")
    ap.add_argument("--emotions", default=",".join(BASIC))
    ap.add_argument("--out", default=str(RESULTS))
    ap.add_argument("--no-sheet", action="store_true")
    ap.add_argument("--no-hd", action="store_true", help="skip the 1920x1080 clip")
    ap.add_argument(
        "--frontier", default="", help="render gains of the identity/FER frontier, e.g. 0.6,1.0,1.3,1.6"
    )
    a = ap.parse_args(argv)
    rel = find_release()
    if rel is None:
        raise SystemExit("needs ../shared/data/cmet_release")
    if a.measure:
        import json

        print(json.dumps(measure_edit(Path(a.measure), a.emotion, rel, Path(a.source) if a.source else None)))
        return 0
    if not a.bundle:
        raise SystemExit("--bundle DIR (or --measure EDIT.mp4)")
    ctx = Ctx(release=rel, out=Path(a.out))
    from bench.pixel import tracked_video

    bundle = ModelBundle.load(a.bundle)
    face = compose([]).face
    v = tracked_video(ctx)
    emotions = tuple(a.emotions.split(","))
    res = measure_video(v, bundle, face, emotions, release=rel)
    if not a.no_hd:
        res["hd"] = measure_hd(rel, Path(a.bundle), compose([]), hd_work(), emotions)
    res["portrait_speech"] = portrait_speech(rel, face)
    if not a.no_sheet:
        sheet_for(v, res, rel, bundle, face, ctx.out)
    res.get("hd", {}).pop("sheet", None)
    if a.frontier:
        res["frontier"] = frontier(v, bundle, face, tuple(float(g) for g in a.frontier.split(",")))
        res["frontier"]["default_gain"] = float(face.render_gain)
        frontier_plot(res["frontier"], ctx.out / "realism_frontier.png")
    md = markdown(res, f"Bundle `{a.bundle}`. Reproduce: `python -m bench.realism --bundle {a.bundle}`.")
    print(md)
    from bench.common import write_result

    write_result(NAME, md, res, Path(a.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
