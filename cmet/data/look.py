"""A short look at a generated set: a contact sheet of face-track renders per emotion and a
spectrogram panel per emotion (``cmet data look``).

The contact sheet renders each clip's apex AU code onto a portrait with the faces room's
renderer (:func:`cmet.face.render.make_renderer`, MediaPipe landmarks); when its model files are
absent it falls back to a schematic face drawn from the AU values, and says so in the title.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from cmet.data.features import BASIC_EMOTIONS


def apex_code(expr: np.ndarray) -> np.ndarray:
    """The clip's apex: mean of the 5 frames of largest AU norm. [T, D] -> [D]."""
    idx = np.argsort(np.linalg.norm(expr, axis=1))[-5:]
    return expr[idx].mean(axis=0)


def pick_clips(
    table: pd.DataFrame, identities: list[str], levels: list[int]
) -> list[tuple[str, list[pd.Series]]]:
    """Rows of the sheet: (label, [one clip per emotion]) for each identity x level."""
    emos = [e for e in BASIC_EMOTIONS if e in set(table["emotion"])] + sorted(
        set(table.loc[table["extended"], "emotion"])
    )
    rows = []
    for ident in identities:
        for lv in levels:
            clips = []
            for e in emos:
                sel = table[(table["identity"] == ident) & (table["emotion"] == e)]
                pref = sel[sel["level"] == (1 if e == "neutral" else lv)]
                sel = pref if len(pref) else sel
                clips.append(sel.iloc[0] if len(sel) else None)
            rows.append((f"{ident} L{lv}", clips))
    return rows


def schematic_face(au: np.ndarray, size: int = 160) -> np.ndarray:
    """A line drawing of a face whose brows, lids, cheeks, mouth follow the AU code [D_EXPR] -> RGB."""
    import cv2

    from cmet.face.facs import AU_NAMES

    a = {n: float(v) for n, v in zip(AU_NAMES, au, strict=True)}
    img = np.full((size, size, 3), 250, np.uint8)
    c = size // 2
    s = size / 160
    cv2.ellipse(img, (c, c), (int(58 * s), int(72 * s)), 0, 0, 360, (60, 60, 60), 2, cv2.LINE_AA)
    for side in (-1, 1):
        ex = c + side * int(22 * s)
        ey = c - int(14 * s)
        lid = max(0.15, 1 + 0.6 * a["AU5"] - 0.6 * a["AU7"] - 0.3 * a["AU6"])
        cv2.ellipse(
            img, (ex, ey), (int(9 * s), max(1, int(5 * s * lid))), 0, 0, 360, (40, 40, 40), 2, cv2.LINE_AA
        )
        inner_up = 10 * a["AU1"] - 8 * a["AU4"]
        outer_up = 10 * a["AU2"] - 3 * a["AU4"]
        by = ey - int(12 * s)
        p_in = (c + side * int(10 * s), int(by - inner_up * s))
        p_out = (c + side * int(34 * s), int(by - outer_up * s))
        cv2.line(img, p_in, p_out, (30, 30, 30), 3, cv2.LINE_AA)
        if a["AU6"] > 0.2:
            cv2.ellipse(
                img, (ex, ey + int(16 * s)), (int(10 * s), int(4 * s)), 0, 180, 360, (120, 120, 200), 1
            )
    if a["AU9"] > 0.2:
        for k in range(3):
            y = c - int((2 - 3 * k) * s)
            cv2.line(img, (c - int(6 * s), y), (c + int(6 * s), y), (90, 90, 90), 1, cv2.LINE_AA)
    my = c + int(34 * s)
    up = 10 * a["AU12"] + 4 * a["AU14"] - 9 * a["AU15"] - 4 * a["AU20"] * 0
    right_up = up + 12 * a["R12"] + 4 * a["R14"]
    width = 22 + 8 * a["AU20"] + 4 * a["AU12"] - 6 * a["AU23"] - 4 * a["AU24"]
    opn = 16 * a["AU26_emo"] + 4 * a["AU16"] + 3 * a["AU10"]
    left = (c - int(width * s), int(my - up * s))
    right = (c + int(width * s), int(my - right_up * s))
    top = (c, int(my - (3 * a["AU10"]) * s))
    bot = (c, int(my + opn * s + 4 * (a["AU12"] - a["AU15"]) * s))
    pts_top = np.array([left, top, right], np.int32)
    pts_bot = np.array([left, bot, right], np.int32)
    cv2.polylines(img, [pts_top], False, (20, 20, 140), 2, cv2.LINE_AA)
    cv2.polylines(img, [pts_bot], False, (20, 20, 140), 2, cv2.LINE_AA)
    return img


def _renderer(release_dir: str | Path | None):
    """(render(au) -> RGB, description) with the faces renderer, or the schematic fallback."""
    try:
        from cmet.face.evaluate import load_portraits
        from cmet.face.expression import canonical
        from cmet.face.landmarks import FaceMesh
        from cmet.face.render import make_renderer

        portraits = load_portraits(release_dir)
        name = next((k for k in portraits if k.startswith("W009")), "astronaut")
        img = portraits[name]
        lm = FaceMesh().mesh(img, name)
        rend = make_renderer(None, canonical(lm), img.shape[:2])
        return (lambda au: rend.render(img, lm, au)), f"faces renderer on portrait {name}"
    except Exception as e:  # assets not fetched, no face found...: draw schematics instead
        return schematic_face, f"schematic faces (renderer unavailable: {type(e).__name__})"


def contact_sheet(
    table: pd.DataFrame,
    out_png: str | Path,
    identities: list[str] | None = None,
    levels: tuple[int, ...] = (1, 2, 3),
    release_dir: str | Path | None = None,
    size: int = 128,
    renderer: str = "auto",
) -> Path:
    """Face-track renders: rows identity x level, columns emotions (apex AU code of one clip each).

    ``renderer``: ``auto`` (the faces renderer, schematic if unavailable) or ``schematic``."""
    import cv2

    table = table.reset_index(drop=True)
    if identities is None:
        identities = sorted(table["identity"].unique())[:2]
    if renderer == "schematic":
        render, how = schematic_face, "schematic faces"
    else:
        render, how = _renderer(release_dir)
    rows = pick_clips(table, identities, list(levels) if identities[:1] else [3])
    if len(identities) > 1:  # the second identity at the top level only
        rows = [r for r in rows if r[0].startswith(identities[0])] + [
            r for r in rows if not r[0].startswith(identities[0]) and r[0].endswith(f"L{max(levels)}")
        ]
    cols = [c["emotion"] if c is not None else "-" for c in rows[0][1]]
    pad_top, pad_left = 34, 86
    H, W = pad_top + len(rows) * size, pad_left + len(cols) * size
    sheet = np.full((H, W, 3), 255, np.uint8)
    cv2.putText(sheet, how[:90], (4, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (0, 0, 0), 1, cv2.LINE_AA)
    ext = set(table.loc[table["extended"], "emotion"])
    for j, e in enumerate(cols):
        lab = e + ("*" if e in ext else "")
        cv2.putText(
            sheet,
            lab[:12],
            (pad_left + j * size + 4, 28),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.42,
            (0, 0, 0),
            1,
            cv2.LINE_AA,
        )
    for i, (lab, clips) in enumerate(rows):
        y = pad_top + i * size
        cv2.putText(sheet, lab, (4, y + size // 2), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (0, 0, 0), 1, cv2.LINE_AA)
        for j, clip in enumerate(clips):
            if clip is None:
                continue
            with np.load(clip["track_path"]) as z:
                au = apex_code(z["expr"])
            im = render(au.astype(np.float32))
            sheet[y : y + size, pad_left + j * size : pad_left + (j + 1) * size] = cv2.resize(
                im, (size, size), interpolation=cv2.INTER_AREA
            )
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out_png), sheet[:, :, ::-1])
    return out_png


def spectrogram_panel(
    table: pd.DataFrame, out_png: str | Path, identity: str | None = None, level: int = 3
) -> Path:
    """Log-mel spectrogram + YIN pitch of one clip per emotion (same identity, same level)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from cmet.audio.dsp import HOP, NFFT, SR, WIN, frame, mel_filterbank, yin_pitch
    from cmet.audio.io import load_audio
    from cmet.plots import save_figure

    identity = identity or sorted(table["identity"].unique())[0]
    emos = [e for e in BASIC_EMOTIONS if e in set(table["emotion"])] + sorted(
        set(table.loc[table["extended"], "emotion"])
    )
    n = len(emos)
    ncol = 4
    nrow = int(np.ceil(n / ncol))
    fig, axes = plt.subplots(nrow, ncol, figsize=(4.2 * ncol, 2.6 * nrow), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for k, e in enumerate(emos):
        sel = table[(table["identity"] == identity) & (table["emotion"] == e)]
        pref = sel[sel["level"] == (1 if e == "neutral" else level)]
        sel = pref if len(pref) else sel
        if not len(sel):
            continue
        w, _ = load_audio(sel.iloc[0]["audio_path"])
        pw = np.abs(np.fft.rfft(frame(w, WIN, HOP) * np.hanning(WIN), NFFT, axis=1)) ** 2
        mel = 10 * np.log10(pw @ mel_filterbank().T + 1e-10)
        f0, _ = yin_pitch(w.astype(np.float64))
        ax = axes.ravel()[k]
        ax.axis("on")
        dur = w.size / SR
        ax.imshow(
            mel.T,
            origin="lower",
            aspect="auto",
            cmap="magma",
            extent=(0, dur, 0, mel.shape[1]),
            vmin=mel.max() - 70,
            vmax=mel.max(),
        )
        t = np.arange(f0.size) * HOP / SR
        f0v = np.where(f0 > 0, f0, np.nan)
        ax2 = ax.twinx()
        ax2.plot(t, f0v, color="cyan", lw=1.2)
        ax2.set_ylim(50, 450)
        ax2.set_ylabel("F0 Hz", fontsize=7)
        ax2.tick_params(labelsize=6)
        ax.set_title(
            f"{e} (L{sel.iloc[0]['level']})" + (" *extended" if bool(sel.iloc[0]["extended"]) else ""),
            fontsize=9,
        )
        ax.set_xlabel("s", fontsize=7)
        ax.set_ylabel("mel band", fontsize=7)
        ax.tick_params(labelsize=6)
    fig.suptitle(
        f"generated speech of {identity}: log-mel spectrogram + YIN pitch (cyan) per emotion", fontsize=10
    )
    return save_figure(fig, out_png, dpi=110)
