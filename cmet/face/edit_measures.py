"""Measures of finished video edits (what ``cmet edit`` wrote), beside the other face figures.

* :func:`check_edit`  one edit: frame count / fps / audio of the output, the mouth-opening track of
  the output against the input's (landmarks re-run on the output), identity kept (median dlib
  descriptor distance over 20 frames, :mod:`cmet.face.identity`), and the FER judge's share of
  frames showing the target against the unedited video's share.
* :func:`measure_edits` one video edited towards several emotions: :func:`check_edit` per emotion, a
  strip of frames (input row + one row per emotion) and the summary figures.

Both take the edit's result (``.out`` the written mp4, ``.landmarks`` the input's tracks
``[T, 468, 3]``, ``.timings``, ``.offsets [T, D_v]``); the edits themselves are made above this room
(:func:`cmet.edit.edit_video`).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from cmet.media import has_audio, read_video


def check_edit(video: str | Path, result, emotion: str | None = None, judge=None) -> dict:
    """Measure one edit of ``video`` (see the module docstring). The judge's box is fixed: the Haar
    face box of the first unedited frame."""
    from cmet.face.judge import EMOTION_TO_LABEL, Judge
    from cmet.face.landmarks import FaceMesh, mouth_opening

    frames_in, fps_in = read_video(video)
    frames_out, fps_out = read_video(result.out)
    mo_in = mouth_opening(result.landmarks)
    mo_out = mouth_opening(FaceMesh().track(frames_out, name=str(result.out)))
    n = min(len(mo_in), len(mo_out))
    res = {
        "n_frames_in": len(frames_in),
        "n_frames_out": len(frames_out),
        "fps_in": fps_in,
        "fps_out": fps_out,
        "audio_out": has_audio(result.out),
        "mouth_corr": float(np.corrcoef(mo_in[:n], mo_out[:n])[0, 1]),
    }
    from cmet.face.identity import identity_distances  # dlib descriptor distance, same frame

    k = np.arange(0, n, max(1, n // 20))
    res["identity_median"] = float(np.median(identity_distances(frames_in[k], frames_out[k])))
    if emotion is not None and emotion in EMOTION_TO_LABEL:
        judge = judge or Judge()
        box = judge.face_box(frames_in[0], str(video))
        v_out = judge(frames_out, box=box)
        v_in = judge(frames_in[: len(frames_out)], box=box)
        lab = EMOTION_TO_LABEL[emotion]
        res["judge_share_target"] = float(np.mean([x == lab for x in v_out.top1]))
        res["judge_share_target_unedited"] = float(np.mean([x == lab for x in v_in.top1]))
        res["mean_p_target"] = float(v_out.p(emotion).mean())
        res["rise_p_target"] = float(v_out.p(emotion).mean() - v_in.p(emotion).mean())
        res["judge_top1_counts"] = {k: v_out.top1.count(k) for k in sorted(set(v_out.top1))}
    return res


def measure_edits(video: str | Path, results: dict, out_dir: str | Path, judge=None) -> dict:
    """``results``: {emotion: edit result of ``video``} -> per emotion :func:`check_edit` + the wall
    time of the edit and of each stage + the mean offset per AU; ``edit_strip.png`` (5 frames of the
    input, then of each edit) and ``edits.json`` in ``out_dir``."""
    import cv2

    from cmet.face.facs import AU_NAMES
    from cmet.face.judge import Judge

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    judge = judge or Judge()
    frames_in, _ = read_video(video)
    pick = np.linspace(0, len(frames_in) - 1, 5).round().astype(int)
    rows = [np.concatenate([frames_in[i] for i in pick], 1)]
    res: dict = {"video": str(video), "emotions": {}}
    for e, r in results.items():
        chk = check_edit(video, r, e, judge)
        chk["timings_s"] = {k: round(v, 3) for k, v in r.timings.items()}
        chk["mean_offset"] = {k: round(float(v), 3) for k, v in zip(AU_NAMES, r.offsets.mean(0), strict=True)}
        res["emotions"][e] = chk
        fo, _ = read_video(r.out)
        rows.append(np.concatenate([fo[i] for i in pick], 1))
    cv2.imwrite(str(out / "edit_strip.png"), np.concatenate(rows, 0)[:, :, ::-1])
    em = res["emotions"]
    res["mean_judge_share_target"] = float(
        np.mean([v.get("judge_share_target", np.nan) for v in em.values()])
    )
    res["min_mouth_corr"] = float(min(v["mouth_corr"] for v in em.values()))
    res["mean_total_s"] = float(np.mean([v["timings_s"]["total"] for v in em.values()]))
    res["strip"] = str(out / "edit_strip.png")
    (out / "edits.json").write_text(json.dumps(res, indent=1))
    return res


# ------------------------------------------------------------------------------ timelines
#: outer-lip mouth corners, outer upper/lower lip centre, mid brows, upper eyelid centres (FaceMesh)
MOUTH_CORNERS, LIP_CENTRE, MID_BROWS, UPPER_LIDS = (61, 291), (0, 17), (105, 334), (159, 386)


def face_readings(p: np.ndarray) -> dict[str, np.ndarray]:
    """Landmarks [T, 468, 2|3] -> per frame, in inter-ocular units (image y down):
    ``corner_lift`` (height of the mouth corners above the lip centre: up in a smile, down in
    sadness), ``brow_height`` (mid brow above the upper eyelid: up in surprise), ``mouth_open``."""
    from cmet.face.landmarks import inter_ocular, mouth_opening

    iod = inter_ocular(p)
    centre = p[:, list(LIP_CENTRE), 1].mean(1)
    return {
        "corner_lift": (centre - p[:, list(MOUTH_CORNERS), 1].mean(1)) / iod,
        "brow_height": (p[:, list(UPPER_LIDS), 1] - p[:, list(MID_BROWS), 1]).mean(1) / iod,
        "mouth_open": mouth_opening(p),
    }


def code_steps(codes: np.ndarray) -> np.ndarray:
    """Per-frame change of expression codes [T, D_v] -> [T - 1] (L2 norm over the AUs)."""
    return np.linalg.norm(np.diff(np.asarray(codes, np.float64), axis=0), axis=1)


def check_timeline(video: str | Path, result, timeline, out_dir: str | Path | None = None) -> dict:
    """Measure an edit along ``timeline`` (:class:`cmet.timeline.Timeline`) of ``video``.

    Per segment, over its frames held at full weight (outside transitions): the mean change of
    :func:`face_readings` of the edited frames (landmarks re-tracked on the output) against the same
    input frames. Transitions: the largest per-frame change of the edited codes inside a transition
    window (``transition_code_step_max``) against the input's own largest per-frame change anywhere
    (``input_code_step_max``), and the same on the frames: the per-frame change of the edit's
    displacement (re-tracked output minus input landmarks, mean over vertices / IOD,
    ``transition_landmark_step_max``) against the input's own per-frame landmark motion
    (``input_landmark_step_max``). A step across a segment's start counts as a transition step (a
    cut, ``~0``, is measured too). With
    ``out_dir``: ``timeline_strip.png`` (input / edit, one frame per segment) and
    ``timeline_codes.png`` (a few AUs over time, segment starts and transitions shaded)."""
    from cmet.face.landmarks import FaceMesh, inter_ocular

    frames_in, fps = read_video(video)
    frames_out, _ = read_video(result.out)
    n = min(len(frames_in), len(frames_out), len(result.landmarks))
    p_in = np.asarray(result.landmarks[:n], np.float64)
    p_out = np.asarray(FaceMesh().track(frames_out[:n], name=str(result.out)), np.float64)
    w = timeline.weights(n, fps)
    tr = timeline.transition_frames(n, fps)
    r_in, r_out = face_readings(p_in), face_readings(p_out)
    segs = []
    for i, s in enumerate(timeline.segments):
        held = np.flatnonzero(w[i] > 0.999)
        row = {"start_s": s.start_s, "target": s.describe(), "held_frames": int(held.size)}
        for k in r_in:
            row[f"d_{k}"] = float((r_out[k][held] - r_in[k][held]).mean()) if held.size else float("nan")
        segs.append(row)
    step_in, step_out = code_steps(result.neutral_codes[:n]), code_steps(result.edited_codes[:n])
    in_tr = tr[1:] | tr[:-1]  # a step touching a transition frame, or crossing a start (a cut)
    for s in timeline.segments:
        k = int(np.ceil(s.start_s * fps - 1e-9))
        if 0 < k < n:
            in_tr[k - 1] = True
    iod = inter_ocular(p_in).mean()
    lm_in = np.linalg.norm(np.diff(p_in[..., :2], axis=0), axis=-1).mean(1) / iod
    # the edit's own motion: the step of the displacement edited - input (the input's motion removed)
    lm_out = np.linalg.norm(np.diff((p_out - p_in)[..., :2], axis=0), axis=-1).mean(1) / iod
    res = {
        "fps": fps,
        "n_frames": n,
        "timeline": timeline.describe(),
        "segments": segs,
        "transition_frames": int(tr.sum()),
        "input_code_step_max": float(step_in.max()),
        "transition_code_step_max": float(step_out[in_tr].max()) if in_tr.any() else 0.0,
        "edit_code_step_max": float(step_out.max()),
        "input_landmark_step_max": float(lm_in.max()),
        "transition_landmark_step_max": float(lm_out[in_tr].max()) if in_tr.any() else 0.0,
    }
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        res["strip"] = str(_timeline_strip(frames_in[:n], frames_out[:n], w, out / "timeline_strip.png"))
        res["plot"] = str(_timeline_plot(result, timeline, tr, fps, n, out / "timeline_codes.png"))
    return res


def _timeline_strip(fin: np.ndarray, fout: np.ndarray, w: np.ndarray, path: Path) -> Path:
    """Input row over edited row, the middle held frame of every segment."""
    import cv2

    picks = []
    for i in range(len(w)):
        held = np.flatnonzero(w[i] > 0.999)
        picks.append(int(held[len(held) // 2]) if held.size else int(np.argmax(w[i])))
    sheet = np.concatenate([np.concatenate([f[i] for i in picks], 1) for f in (fin, fout)], 0).copy()
    cv2.imwrite(str(path), sheet[:, :, ::-1])
    return path


def _timeline_plot(result, timeline, tr: np.ndarray, fps: float, n: int, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from cmet.face.facs import AU_NAMES

    t = np.arange(n) / fps
    fig, ax = plt.subplots(figsize=(9, 3.6))
    for au in ("AU1", "AU4", "AU12", "AU15", "AU26_emo", "AU2"):
        if au in AU_NAMES:
            ax.plot(t, np.asarray(result.edited_codes)[:n, AU_NAMES.index(au)], label=au, lw=1.2)
    ax.fill_between(t, 0, 1, where=tr, transform=ax.get_xaxis_transform(), color="0.85", label="transition")
    for s in timeline.segments:
        ax.axvline(s.start_s, color="k", lw=0.8, ls="--")
        ax.text(s.start_s, 1.01, s.target.describe(), transform=ax.get_xaxis_transform(), fontsize=8)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("edited AU code")
    ax.legend(fontsize=7, ncol=4, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
