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
