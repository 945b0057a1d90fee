"""Figures of the face side: portrait renders judged by FER, and the codes round trip.

``python -m cmet.face.evaluate portraits --out DIR`` / ``roundtrip`` (also importable:
:func:`evaluate_portraits`, :func:`round_trip`).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

BASIC = ("angry", "disgusted", "fear", "happy", "sad", "surprised")
#: portraits the FACS prototype magnitudes were calibrated on (see cmet.face.facs); the others are held out
CALIBRATION_PREFIX = "ChatGPT_"


def load_portraits(release_dir: str | Path | None = None) -> dict[str, np.ndarray]:
    """RGB portraits: every image in ``asset/identity`` (when present) and skimage's astronaut."""
    import cv2
    from skimage.data import astronaut

    out: dict[str, np.ndarray] = {}
    if release_dir is not None:
        for f in sorted((Path(release_dir) / "asset" / "identity").glob("*")):
            im = cv2.imread(str(f))
            if im is not None:
                out[f.stem] = im[:, :, ::-1].copy()
    out["astronaut"] = astronaut()
    return out


def _contact_sheet(
    rows: list[list[np.ndarray]], labels: list[str], cols: list[str], path: Path, size: int = 128
):
    import cv2

    pad = 18
    H = len(rows) * size + pad
    W = len(cols) * size + 110
    sheet = np.full((H, W, 3), 255, np.uint8)
    for j, c in enumerate(cols):
        cv2.putText(
            sheet, c, (110 + j * size + 4, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA
        )
    for i, (r, lab) in enumerate(zip(rows, labels, strict=True)):
        y = pad + i * size
        cv2.putText(
            sheet, lab[:16], (2, y + size // 2), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (0, 0, 0), 1, cv2.LINE_AA
        )
        for j, im in enumerate(r):
            sheet[y : y + size, 110 + j * size : 110 + (j + 1) * size] = cv2.resize(
                im, (size, size), interpolation=cv2.INTER_AREA
            )
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), sheet[:, :, ::-1])


def evaluate_portraits(
    release_dir: str | Path | None = None,
    out_dir: str | Path | None = None,
    intensity: float = 1.0,
    gain: float = 1.0,
    shading: float = 1.0,
    emotions: tuple[str, ...] = BASIC,
    backend: str = "tflite",
    progress: bool = True,
) -> dict:
    """Render each emotion's FACS prototype at ``intensity`` onto every portrait; the FER judge's
    top-1 accuracy per emotion and overall, the mean rise in p(target) over the unedited face,
    the neutral control (top-1 of the unedited faces) and a contact sheet (``out_dir``)."""
    from cmet.face.expression import canonical
    from cmet.face.facs import prototype
    from cmet.face.judge import EMOTION_TO_LABEL, LABELS, Judge
    from cmet.face.landmarks import FaceMesh
    from cmet.face.render import FaceRenderer

    portraits = load_portraits(release_dir)
    fm, judge = FaceMesh(), Judge(backend)
    per = {e: [] for e in emotions}
    rise = {e: [] for e in emotions}
    control = []
    rows, names = [], []
    items = portraits.items()
    if progress:
        from tqdm import tqdm

        items = tqdm(list(items), desc="portraits", unit="face")
    confusion = np.zeros((len(emotions), len(LABELS)), int)
    split = {"calibration": [], "held_out": []}  # prototypes were calibrated on ChatGPT_* only (facs.py)
    for name, img in items:
        lm = fm.mesh(img, name)
        box = judge.face_box(img, name)
        can = canonical(lm)
        rend = FaceRenderer(can, img.shape[:2], shading_strength=shading, gain=gain, jaw_gain=gain)
        renders = [img] + [rend.render(img, lm, intensity * prototype(e)) for e in emotions]
        v = judge(renders, box=box)
        control.append(v.top1[0])
        for k, e in enumerate(emotions):
            lab = EMOTION_TO_LABEL[e]
            per[e].append(v.top1[k + 1] == lab)
            split["calibration" if name.startswith(CALIBRATION_PREFIX) else "held_out"].append(
                v.top1[k + 1] == lab
            )
            rise[e].append(float(v.p(e)[k + 1] - v.p(e)[0]))
            confusion[k, LABELS.index(v.top1[k + 1])] += 1
        rows.append(renders)
        names.append(name)
    res = {
        "n_portraits": len(portraits),
        "per_emotion_top1": {e: float(np.mean(per[e])) for e in emotions},
        "overall_top1": float(np.mean([x for e in emotions for x in per[e]])),
        "calibration_top1": float(np.mean(split["calibration"])) if split["calibration"] else None,
        "held_out_top1": float(np.mean(split["held_out"])) if split["held_out"] else None,
        "n_calibration_renders": len(split["calibration"]),
        "n_held_out_renders": len(split["held_out"]),
        "rise_p_target": {e: float(np.mean(rise[e])) for e in emotions},
        "mean_rise_p_target": float(np.mean([x for e in emotions for x in rise[e]])),
        "neutral_control_top1": {lab: control.count(lab) for lab in sorted(set(control))},
        "neutral_control_share_neutral": float(np.mean([c == "neutral" for c in control])),
        "confusion": {"rows": list(emotions), "cols": list(LABELS), "counts": confusion.tolist()},
        "settings": {"intensity": intensity, "gain": gain, "shading": shading, "backend": backend},
    }
    if out_dir is not None:
        out = Path(out_dir)
        _contact_sheet(rows, names, ["unedited", *emotions], out / "portraits_contact_sheet.png")
        (out / "portraits.json").write_text(json.dumps(res, indent=2))
        res["contact_sheet"] = str(out / "portraits_contact_sheet.png")
    return res


def round_trip(
    img: np.ndarray,
    n: int = 40,
    seed: int = 0,
    name: str = "image",
    max_code: float = 1.0,
    observed: bool = True,
    mode: str = "sparse",
    gain: float = 1.0,
) -> dict:
    """Random AU codes -> render -> landmarks -> codes; Pearson correlation per code.

    ``mode``: ``sparse`` (independent AUs, half of them on) or ``prototypes`` (random blends of the
    emotion prototypes: the codes the model actually asks for)."""
    from cmet.face.expression import calibrate, canonical, encode
    from cmet.face.facs import AU_NAMES, D_EXPR
    from cmet.face.landmarks import FaceMesh
    from cmet.face.render import FaceRenderer

    rng = np.random.default_rng(seed)
    fm = FaceMesh()
    lm = fm.mesh(img, name)
    can = canonical(lm)
    rend = FaceRenderer(can, img.shape[:2], gain=gain, jaw_gain=gain)
    if observed:
        calibrate(can, img, lm, fm, rend)
    if mode == "sparse":  # each AU active with prob 0.5, intensity U(0, max_code)
        codes = rng.uniform(0, max_code, (n, D_EXPR)) * (rng.uniform(size=(n, D_EXPR)) < 0.5)
    elif mode == "prototypes":  # what the model produces: non-negative blends of the emotion prototypes
        from cmet.face.facs import EMOTION_PROTOTYPES, prototype_matrix

        P = prototype_matrix([e for e in EMOTION_PROTOTYPES if e != "neutral"])
        w = rng.uniform(0, 1, (n, len(P))) * (rng.uniform(size=(n, len(P))) < 0.4)
        codes = np.clip(w @ P, 0, max_code)
    else:
        raise ValueError(f"round_trip mode {mode!r}: sparse | prototypes")
    rec = []
    for c in codes:
        out = rend.render(img, lm, c)
        lm2 = fm.mesh(out, name)
        # the source (the portrait = the neutral) has lips 0: the jaw is fixed there
        rec.append(encode(can, lm2[None], lips_ref=np.zeros(1)).au[0])
    rec = np.array(rec)
    corr = {}
    for k, a in enumerate(AU_NAMES):
        x, y = codes[:, k], rec[:, k]
        if x.std() == 0:
            corr[a] = float("nan")  # the code never varied in this draw (not testable)
        else:  # a code the encoder never recovers (constant output) counts as 0
            corr[a] = float(np.corrcoef(x, y)[0, 1]) if y.std() > 0 else 0.0
    return {
        "corr": corr,
        "min_corr": float(np.nanmin(list(corr.values()))),
        "n": n,
        "n_codes_ge_0.9": int(sum(v >= 0.9 for v in corr.values() if v == v)),
        "mae": float(np.abs(rec - codes).mean()),
    }


def evaluate_edits(
    video: str | Path,
    bundle=None,
    out_dir: str | Path = "outputs/face/edits",
    emotions: tuple[str, ...] = BASIC,
    intensity: float = 1.0,
    gain: float | None = None,
) -> dict:
    """``cmet edit`` on one neutral video for each emotion: mp4 (+ codes JSON) per emotion, and per
    emotion the output's frame count/fps/audio, the mouth-opening correlation with the input, the
    FER judge's share of frames with the target (and the unedited video's share), the wall time of
    the whole edit and of each stage; a strip of frames (input row + one row per emotion)."""
    import cv2

    from cmet.edit import check_edit, edit_video, load_bundle, read_video
    from cmet.face.judge import Judge

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    b = load_bundle(bundle)
    judge = Judge()
    res: dict = {"video": str(video), "emotions": {}}
    frames_in, _ = read_video(video)
    pick = np.linspace(0, len(frames_in) - 1, 5).round().astype(int)
    rows = [np.concatenate([frames_in[i] for i in pick], 1)]
    for e in emotions:
        r = edit_video(
            video,
            e,
            bundle=b,
            out=out / f"{e}.mp4",
            codes_out=out / f"{e}.json",
            intensity=intensity,
            gain=gain,
        )
        chk = check_edit(video, r, e, judge)
        chk["timings_s"] = {k: round(v, 3) for k, v in r.timings.items()}
        chk["mean_offset"] = {
            k: round(float(v), 3) for k, v in zip(_au_names(), r.offsets.mean(0), strict=True)
        }
        res["emotions"][e] = chk
        fo, _ = read_video(r.out_path)
        rows.append(np.concatenate([fo[i] for i in pick], 1))
    strip = np.concatenate(rows, 0)
    cv2.imwrite(str(out / "edit_strip.png"), strip[:, :, ::-1])
    em = res["emotions"]
    res["mean_judge_share_target"] = float(np.mean([v["judge_share_target"] for v in em.values()]))
    res["min_mouth_corr"] = float(min(v["mouth_corr"] for v in em.values()))
    res["mean_total_s"] = float(np.mean([v["timings_s"]["total"] for v in em.values()]))
    res["strip"] = str(out / "edit_strip.png")
    (out / "edits.json").write_text(json.dumps(res, indent=1))
    return res


def _au_names():
    from cmet.face.facs import AU_NAMES

    return AU_NAMES


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m cmet.face.evaluate")
    ap.add_argument("what", choices=["portraits", "roundtrip", "edits"])
    ap.add_argument("--model", default=None, help="bundle folder (edits)")
    ap.add_argument("--mode", default="sparse", help="roundtrip codes: sparse | prototypes")
    ap.add_argument("--release", default=None)
    ap.add_argument("--out", default="outputs/face")
    ap.add_argument("--gain", type=float, default=None, help="render gain (default: face.render_gain)")
    ap.add_argument("--shading", type=float, default=1.0)
    ap.add_argument("--intensity", type=float, default=1.0)
    ap.add_argument("--n", type=int, default=40)
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (the shared 2-core box: 1)")
    a = ap.parse_args(argv)
    import torch

    torch.set_num_threads(max(1, a.threads))
    from cmet.env import project_root

    rel = a.release or (project_root().parent / "shared" / "data" / "cmet_release")
    rel = rel if Path(rel).is_dir() else None
    if a.what == "portraits":
        from cmet.config import compose

        gain = a.gain if a.gain is not None else float(compose([]).face.render_gain)
        res = evaluate_portraits(rel, a.out, intensity=a.intensity, gain=gain, shading=a.shading)
    elif a.what == "edits":
        if rel is None:
            print("edits need the release video (../shared)")
            return 2
        res = evaluate_edits(
            Path(rel) / "asset" / "video" / "W009_038.mp4",
            a.model,
            Path(a.out) / "edits",
            intensity=a.intensity,
            gain=a.gain,
        )
    else:
        res = {}
        for name, img in load_portraits(rel).items():
            res[name] = round_trip(img, n=a.n, name=name, mode=a.mode)
            print(name, json.dumps({k: round(v, 3) for k, v in res[name]["corr"].items()}))
        per = np.array([[r["corr"][k] for k in r["corr"]] for r in res.values()], np.float64)
        names = list(next(iter(res.values()))["corr"])
        res["mean_corr_per_code"] = dict(zip(names, np.nanmean(per, 0).round(3).tolist(), strict=True))
        Path(a.out).mkdir(parents=True, exist_ok=True)
        (Path(a.out) / f"roundtrip_{a.mode}.json").write_text(json.dumps(res, indent=1))
    print(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
