"""How well a speech encoder's *differences* carry emotion across speakers (the speech-side figure).

Protocol (the one the issue quotes for emotion2vec+large, Whisper, eGeMAPS, log-mel):
for a held-out speaker s and emotion e, the semantic vector is the mean embedding of k random
emotional clips of s minus the mean of the neutral clips of s (all of them); it is assigned to the
nearest emotion centroid, the centroids being the same semantic vectors (all clips) of the other
speakers, averaged per emotion. Accuracy over speakers x emotions x draws; chance = 1/#emotions.

``projection`` may learn a map of the embedding space, fit only on the *other* speakers of each
fold: ``"none"`` (raw), ``"standardize"`` (within-speaker z-scoring of the differences), ``"lda"``
(linear discriminant analysis of the other speakers' per-clip differences, shrinkage LDA).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from cmet.errors import DataError

NEUTRAL = "neutral"


def _fit_projection(diffs: np.ndarray, labels: np.ndarray, kind: str) -> tuple[np.ndarray, np.ndarray | None]:
    """(mean [D], matrix [D, D'] or None = identity) fit on per-clip differences of the training speakers."""
    d = diffs.shape[1]
    if kind == "none":
        return np.zeros(d), None
    mu = diffs.mean(axis=0)
    sd = diffs.std(axis=0) + 1e-6
    if kind == "standardize":
        return mu, np.diag(1.0 / sd)
    if kind == "lda":
        from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

        z = (diffs - mu) / sd
        lda = LinearDiscriminantAnalysis(solver="eigen", shrinkage="auto").fit(z, labels)
        w = lda.scalings_[:, : len(np.unique(labels)) - 1]
        return mu, np.diag(1.0 / sd) @ w
    raise DataError(f"unknown projection {kind!r}; use none, standardize or lda")


def _apply(v: np.ndarray, mu: np.ndarray, w: np.ndarray | None) -> np.ndarray:
    return v if w is None else (v - mu) @ w


def evaluate_speaker_transfer(
    features: np.ndarray,
    speakers: Sequence[str],
    emotions: Sequence[str],
    ks: Sequence[int] = (1, 3, 5),
    n_draws: int = 50,
    seed: int = 0,
    projection: str = "none",
    metric: str = "cosine",
) -> dict:
    """Leave-one-speaker-out nearest-centroid accuracy of k-clip semantic vectors.

    features [N, D] one embedding a clip; speakers [N]; emotions [N] (``"neutral"`` clips are the
    reference). Returns ``{"acc": {k: float}, "per_emotion": {k: {emotion: float}}, "chance": float,
    "confusion": {k: [E, E] counts}, "emotions": [...]}``.
    """
    x = np.asarray(features, dtype=np.float64)
    spk = np.asarray(speakers).astype(str)
    emo = np.asarray(emotions).astype(str)
    if x.ndim != 2 or x.shape[0] != spk.size or spk.size != emo.size:
        raise DataError(
            f"features [N, D], speakers [N], emotions [N] must agree; got {x.shape}, {spk.size}, {emo.size}"
        )
    speakers_u = sorted(set(spk))
    if len(speakers_u) < 2:
        raise DataError("speaker-transfer evaluation needs at least 2 speakers")
    emos = sorted(set(emo) - {NEUTRAL})
    if not emos:
        raise DataError("no emotional (non-neutral) clips to evaluate")
    rng = np.random.default_rng(seed)
    neutral_mean = {}
    for s in speakers_u:
        sel = (spk == s) & (emo == NEUTRAL)
        if not sel.any():
            raise DataError(f"speaker {s!r} has no neutral clips (the reference of the difference)")
        neutral_mean[s] = x[sel].mean(axis=0)
    diff = x - np.stack([neutral_mean[s] for s in spk])  # per-clip difference to own neutral mean
    emo_idx = {e: i for i, e in enumerate(emos)}
    conf = {k: np.zeros((len(emos), len(emos)), np.int64) for k in ks}
    for s in speakers_u:
        train = (spk != s) & (emo != NEUTRAL)
        mu, w = _fit_projection(diff[train], emo[train], projection)
        # centroids: per other speaker per emotion mean difference, averaged over speakers
        cents = []
        for e in emos:
            per = [
                diff[(spk == o) & (emo == e)].mean(axis=0)
                for o in speakers_u
                if o != s and ((spk == o) & (emo == e)).any()
            ]
            if not per:
                raise DataError(f"no other speaker has emotion {e!r}")
            cents.append(np.mean(per, axis=0))
        c = _apply(np.stack(cents), mu, w)
        for e in emos:
            idx = np.flatnonzero((spk == s) & (emo == e))
            if idx.size == 0:
                continue
            for k in ks:
                kk = min(k, idx.size)
                q = _apply(
                    np.stack([diff[rng.choice(idx, kk, replace=False)].mean(axis=0) for _ in range(n_draws)]),
                    mu,
                    w,
                )
                if metric == "cosine":
                    qn = q / (np.linalg.norm(q, axis=1, keepdims=True) + 1e-12)
                    cn = c / (np.linalg.norm(c, axis=1, keepdims=True) + 1e-12)
                    pred = np.argmax(qn @ cn.T, axis=1)
                else:
                    pred = np.argmin(((q[:, None, :] - c[None]) ** 2).sum(-1), axis=1)
                np.add.at(conf[k], (np.full(n_draws, emo_idx[e]), pred), 1)
    acc = {k: float(np.trace(m) / m.sum()) for k, m in conf.items()}
    per = {k: {e: float(m[i, i] / max(m[i].sum(), 1)) for i, e in enumerate(emos)} for k, m in conf.items()}
    return {
        "acc": acc,
        "per_emotion": per,
        "chance": 1.0 / len(emos),
        "confusion": {k: m.tolist() for k, m in conf.items()},
        "emotions": emos,
        "projection": projection,
        "metric": metric,
        "n_draws": n_draws,
    }


def mead_release_table(release_dir: str | Path) -> pd.DataFrame:
    """The real MEAD speech of the authors' release: one row a clip (path, speaker, emotion, clip)."""
    root = Path(release_dir) / "audios" / "MEAD"
    if not root.is_dir():
        raise DataError(f"MEAD speech of the release not found at {root}")
    rows = []
    for edir in sorted(p for p in root.iterdir() if p.is_dir()):
        for wav in sorted(edir.glob("*.wav")):
            parts = wav.stem.split("_")
            rows.append(
                {
                    "audio_path": str(wav),
                    "identity": parts[0],
                    "emotion": edir.name,
                    "clip": parts[-1],
                    "level": int(parts[2]) if "level" in parts else 1,
                }
            )
    if not rows:
        raise DataError(f"no wav files under {root}")
    return pd.DataFrame(rows)


def precomputed_feature(path: str | Path, subdir: str = "emotion2vec+large_features") -> np.ndarray:
    """The authors' feature of an audio file: ``<dir>/<subdir>/<stem>.npy`` -> [D]."""
    path = Path(path)
    f = path.parent / subdir / f"{path.stem}.npy"
    if not f.is_file():
        raise DataError(f"precomputed feature not found for {path.name}: expected {f}")
    return np.load(f).reshape(-1).astype(np.float32)


def plot_confusion(result: dict, k: int, out_png: str | Path, title: str = "") -> Path:
    """Save the k-clip confusion matrix of :func:`evaluate_speaker_transfer` as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from cmet.plots import annotate_cells, save_figure

    m = np.asarray(result["confusion"][k], dtype=float)
    m = m / np.maximum(m.sum(axis=1, keepdims=True), 1)
    emos = result["emotions"]
    fig, ax = plt.subplots(figsize=(5.5, 4.8))
    ax.imshow(m, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(emos)), emos, rotation=45, ha="right")
    ax.set_yticks(range(len(emos)), emos)
    annotate_cells(ax, m, fontsize=7, white_above=0.5)
    ax.set_xlabel("nearest centroid")
    ax.set_ylabel("true emotion")
    ax.set_title(title or f"k={k}: acc {result['acc'][k]:.2f}")
    return save_figure(fig, out_png, dpi=120)
