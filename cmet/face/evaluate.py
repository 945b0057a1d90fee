"""Figures of the face side: portrait renders judged by FER, and the codes round trip.

``cmet face render-check`` (:func:`evaluate_portraits`) and ``cmet face roundtrip``
(:func:`round_trip_portraits`, one face: :func:`round_trip`); the measures of finished video edits
are in :mod:`cmet.face.edit_measures`.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

BASIC = ("angry", "disgusted", "fear", "happy", "sad", "surprised")
#: portraits the FACS prototype magnitudes were calibrated on (see cmet.face.facs); the others are held out
CALIBRATION_PREFIX = "ChatGPT_"


def load_portraits(release_dir: str | Path | None = None, limit: int | None = None) -> dict[str, np.ndarray]:
    """RGB portraits: every image in ``asset/identity`` (when present) and skimage's astronaut
    (the first ``limit`` of them when given: smoke runs)."""
    import cv2
    from skimage.data import astronaut

    out: dict[str, np.ndarray] = {}
    if release_dir is not None:
        for f in sorted((Path(release_dir) / "asset" / "identity").glob("*")):
            im = cv2.imread(str(f))
            if im is not None:
                out[f.stem] = im[:, :, ::-1].copy()
    out["astronaut"] = astronaut()
    return out if limit is None else dict(list(out.items())[:limit])


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
    limit: int | None = None,
) -> dict:
    """Render each emotion's FACS prototype at ``intensity`` onto every portrait; the FER judge's
    top-1 accuracy per emotion and overall, the mean rise in p(target) over the unedited face,
    the neutral control (top-1 of the unedited faces) and a contact sheet (``out_dir``)."""
    from cmet.face.expression import canonical
    from cmet.face.facs import prototype
    from cmet.face.judge import EMOTION_TO_LABEL, LABELS, Judge
    from cmet.face.landmarks import FaceMesh
    from cmet.face.render import make_renderer

    portraits = load_portraits(release_dir, limit)
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
        rend = make_renderer(None, can, img.shape[:2], render_gain=gain, shading=shading)
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


def random_codes(mode: str, n: int, rng: np.random.Generator, p_active: float = 0.2, max_code: float = 1.0):
    """Codes for the round trip [n, D_EXPR].

    ``single``: one AU at a time, U(0.1, max_code); ``sparse``: each AU on with probability
    ``p_active``, U(0, max_code) (0.2: ~4 AUs at once, as many as an EMFACS prototype; 0.5: ~10,
    antagonists such as AU1/AU4 or AU17/AU26 together: a stress test); ``emotions``: one emotion
    prototype or a blend of two at random intensities (what ``cmet edit --emotion`` / ``--blend``
    asks the renderer for); ``prototypes``: each of the 7 prototypes on with probability 0.4 at
    a random weight (~3 emotions at once, angry with fear, happy with sad: a stress test)."""
    from cmet.face.facs import D_EXPR

    if mode == "single":
        codes = np.zeros((n, D_EXPR))
        codes[np.arange(n), np.arange(n) % D_EXPR] = rng.uniform(0.1, max_code, n)
        return codes
    if mode == "sparse":
        from cmet.face.calibration import sparse_codes

        return sparse_codes(n, rng, p_active, max_code)
    if mode in ("prototypes", "emotions"):
        from cmet.face.facs import EMOTION_PROTOTYPES, prototype_matrix

        P = prototype_matrix([e for e in EMOTION_PROTOTYPES if e != "neutral"])
        if mode == "prototypes":
            w = rng.uniform(0, 1, (n, len(P))) * (rng.uniform(size=(n, len(P))) < 0.4)
        else:  # what `cmet edit --emotion` / `--blend a=x,b=y` asks for: one emotion or two
            w = np.zeros((n, len(P)))
            for i in range(n):
                k = rng.choice(len(P), size=1 + int(rng.uniform() < 0.5), replace=False)
                w[i, k] = rng.uniform(0.1, 1.0, len(k))
        return np.clip(w @ P, 0, max_code)
    raise ValueError(f"round_trip mode {mode!r}: single | sparse | emotions | prototypes")


def round_trip(
    img: np.ndarray,
    n: int = 40,
    seed: int = 0,
    name: str = "image",
    max_code: float = 1.0,
    observed: bool = True,
    mode: str = "sparse",
    gain: float = 1.0,
    p_active: float = 0.2,
    modes: tuple | None = None,
    tta: int = 1,
    n_calibration: int = 240,
    landmarks: str = "flow",
) -> dict:
    """Random AU codes -> render -> landmarks -> codes; Pearson correlation per code.

    The encoder is calibrated on this face first (:func:`cmet.face.calibration.calibrate`, on
    ``n_calibration`` renders of codes drawn with another seed), then tested on ``n`` fresh codes
    per mode (:func:`random_codes`). ``modes``: several ``(mode, p_active)`` at once (one
    calibration); the result then has one entry per mode under ``"modes"``.

    ``landmarks``: ``flow`` (FaceMesh refined by optical flow from the neutral portrait,
    :mod:`cmet.face.flow`) or ``facemesh`` (FaceMesh alone, averaged over ``tta`` crops)."""
    from cmet.face.calibration import calibrate
    from cmet.face.expression import canonical, encode
    from cmet.face.facs import AU_NAMES
    from cmet.face.landmarks import FaceMesh
    from cmet.face.render import make_renderer

    fm = FaceMesh(tta=tta)
    lm = fm.mesh(img, name)
    can = canonical(lm)
    rend = make_renderer(None, can, img.shape[:2], render_gain=gain)
    if landmarks == "flow":
        from cmet.face.flow import RefinedMesh

        fm = RefinedMesh(fm, img, lm)
    elif landmarks != "facemesh":
        raise ValueError(f"round_trip landmarks {landmarks!r}: flow | facemesh")
    if observed:
        calibrate(can, img, lm, fm, rend, n=n_calibration, seed=seed + 1000)

    def one(mode_, p_):
        codes = random_codes(mode_, n, np.random.default_rng(seed), p_, max_code)
        rec = []
        for c in codes:
            lm2 = fm.mesh(rend.render(img, lm, c), name)
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
        vals = [v for v in corr.values() if v == v]
        return {
            "mode": mode_,
            "p_active": p_ if mode_ == "sparse" else None,
            "corr": corr,
            "min_corr": float(np.min(vals)),
            "n": n,
            "n_codes_ge_0.9": int(sum(v >= 0.9 for v in vals)),
            "n_codes": len(vals),
            "mae": float(np.abs(rec - codes).mean()),
        }

    if modes is None:
        return one(mode, p_active)
    out = {"modes": {_mode_key(m, p): one(m, p) for m, p in modes}}
    if observed:  # what FaceMesh sees of each AU (norm, IOD units) and how alike two AUs look to it
        B = can.observed[:, :, :2].reshape(len(AU_NAMES), -1).astype(np.float64)
        nb = np.linalg.norm(B, axis=1)
        out["observed_norm"] = dict(zip(AU_NAMES, nb.round(4).tolist(), strict=True))
        out["observed_cos"] = ((B / nb[:, None]) @ (B / nb[:, None]).T).round(3).tolist()
        D = can.basis[:, :, :2].reshape(len(AU_NAMES), -1).astype(np.float64)
        out["seen_share"] = dict(  # the part of each designed field FaceMesh reports, along the field
            zip(AU_NAMES, ((B * D).sum(1) / (D * D).sum(1)).round(3).tolist(), strict=True)
        )
    return out


def _mode_key(mode: str, p: float | None) -> str:
    return f"sparse{p:g}" if mode == "sparse" else mode


ROUND_TRIP_MODES = (
    ("single", None),
    ("sparse", 0.1),
    ("sparse", 0.2),
    ("emotions", None),
    ("prototypes", None),
    ("sparse", 0.5),
)


def _round_trip_figure(mean: dict, per_face: dict, path: Path, landmarks: str = ""):
    """Heat map: rows = modes, columns = codes, cell = mean correlation over the faces."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from cmet.plots import annotate_cells, save_figure

    modes = list(mean)
    codes = list(next(iter(mean.values())))
    M = np.array([[mean[m][c] for c in codes] for m in modes], np.float64)
    fig, ax = plt.subplots(figsize=(1 + 0.55 * len(codes), 1.2 + 0.5 * len(modes)))
    im = ax.imshow(M, vmin=0, vmax=1, cmap="RdYlGn")
    annotate_cells(ax, M, fontsize=7)
    ax.set_xticks(range(len(codes)), codes, rotation=60, fontsize=8)
    ax.set_yticks(range(len(modes)), modes, fontsize=8)
    lm = {"flow": "FaceMesh + flow", "facemesh": "FaceMesh"}.get(landmarks, landmarks)
    ax.set_title(
        f"round trip codes -> render -> {lm} -> codes: mean r over {len(per_face)} faces", fontsize=9
    )
    fig.colorbar(im, ax=ax, fraction=0.02)
    save_figure(fig, path, dpi=110)


def round_trip_portraits(
    release_dir=None,
    out_dir=None,
    n: int = 76,
    gain: float = 1.0,
    tta: int = 1,
    modes=ROUND_TRIP_MODES,
    progress: bool = True,
    landmarks: str = "flow",
    limit: int | None = None,
    stem: str = "roundtrip",
    save_json: bool = True,
) -> dict:
    """:func:`round_trip` on every portrait for each mode: per-face and mean correlation per code,
    JSON (``save_json``) + heat maps (``<stem>_<landmarks>.json``, ``.png``,
    ``_identifiability.png`` in ``out_dir``)."""
    faces = load_portraits(release_dir, limit)
    items = list(faces.items())
    if progress:
        from tqdm import tqdm

        items = tqdm(items, desc="round trip", unit="face")
    per_face, obs_cos, obs_norm, seen = {}, [], [], []
    for name, img in items:
        r = round_trip(img, n=n, name=name, gain=gain, modes=modes, tta=tta, landmarks=landmarks)
        per_face[name] = r["modes"]
        if "observed_cos" in r:
            obs_cos.append(np.array(r["observed_cos"]))
            obs_norm.append(list(r["observed_norm"].values()))
            seen.append(list(r["seen_share"].values()))
    keys = [_mode_key(m, p) for m, p in modes]
    names = list(next(iter(per_face.values()))[keys[0]]["corr"])
    mean, worst = {}, {}
    for k in keys:
        per = np.array([[r[k]["corr"][c] for c in names] for r in per_face.values()], np.float64)
        varied = ~np.isnan(per).all(0)  # a code the distribution never varies (AU14 in emotions) stays NaN
        m, w = np.full(len(names), np.nan), np.full(len(names), np.nan)
        m[varied], w[varied] = np.nanmean(per[:, varied], 0), np.nanmin(per[:, varied], 0)
        mean[k] = dict(zip(names, m.round(3).tolist(), strict=True))
        worst[k] = dict(zip(names, w.round(3).tolist(), strict=True))
    summary = {
        k: {
            "n_codes_mean_ge_0.9": int(sum(v >= 0.9 for v in mean[k].values() if v == v)),
            "mean_over_codes": float(np.nanmean(list(mean[k].values()))),
        }
        for k in keys
    }
    res = {
        "n_faces": len(per_face),
        "n_per_mode": n,
        "gain": gain,
        "tta": tta,
        "landmarks": landmarks,
        "summary": summary,
        "mean_corr_per_code": mean,
        "min_corr_per_code": worst,
        "per_face": per_face,
    }
    if obs_norm:
        res["observed_norm_mean"] = dict(zip(names, np.mean(obs_norm, 0).round(4).tolist(), strict=True))
        res["seen_share_mean"] = dict(zip(names, np.mean(seen, 0).round(3).tolist(), strict=True))
        C = np.mean(obs_cos, 0)
        np.fill_diagonal(C, 0)
        res["most_alike_to_facemesh"] = {
            a: {names[j]: round(float(C[i, j]), 3) for j in np.argsort(-np.abs(C[i]))[:2]}
            for i, a in enumerate(names)
        }
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        base = out / f"{stem}_{landmarks}"
        if save_json:
            base.with_suffix(".json").write_text(json.dumps(res, indent=1))
        _round_trip_figure(mean, per_face, base.with_suffix(".png"), landmarks)
        res["figure"] = str(base.with_suffix(".png"))
        if obs_cos:
            fig = out / f"{stem}_{landmarks}_identifiability.png"
            _identifiability_figure(np.mean(obs_cos, 0), names, fig, landmarks)
            res["identifiability_figure"] = str(fig)
    return res


def _identifiability_figure(cos: np.ndarray, names: list[str], path: Path, landmarks: str = ""):
    """Cosine between the AU responses FaceMesh reports (mean over faces): |cos| near 1 = two AUs
    the landmark model cannot tell apart (+1) or that cancel each other (-1)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from cmet.plots import annotate_cells, save_figure

    fig, ax = plt.subplots(figsize=(9, 8))
    im = ax.imshow(cos, vmin=-1, vmax=1, cmap="coolwarm")
    annotate_cells(ax, cos, fmt="{:+.1f}", fontsize=6, skip_diagonal=True)
    ax.set_xticks(range(len(names)), names, rotation=60, fontsize=8)
    ax.set_yticks(range(len(names)), names, fontsize=8)
    ax.set_title(f"cos between AU responses seen by the landmarks ({landmarks}), mean over faces", fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.03)
    save_figure(fig, path, dpi=110)
