"""Which basic emotion an edit is nearest: the one readout used by the bench, the service and the model card.

An edit is summarised by the time mean of its expression offsets ``o`` [D_v]. The basic emotions'
directions are the bundle's label-baseline offsets (the mean visual semantic vector of each basic
emotion in training; :func:`basic_directions`). The readout (:func:`nearest_basic`) is the basic
emotion whose direction has the largest cosine with ``o`` (among ``allowed`` classes when given); an
edit whose size is below ``neutral_share`` of the smallest basic direction's norm reads as ``neutral``.

:func:`extended_agreement` applies it to the extended-emotion clips of a held-out split that carry the
speech encoder's own label (``FeatureSet.meta["ser_labels"]``, e.g. the ``e2v+L_ser`` column of the
authors' TTS clips): C-MET (and speech-direct) on one clip against all the speaker's neutral clips,
read over the classes that labeller has (``meta["ser_classes"]``: emotion2vec+large's classifier has no
*contempt*, so an edit cannot agree with it as contempt).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from cmet.data.features import BASIC_EMOTIONS, NEUTRAL
from cmet.errors import ModelError

#: an edit smaller than this share of the smallest basic direction reads as neutral
NEUTRAL_SHARE = 0.25


def basic_directions(bundle) -> dict[str, np.ndarray]:
    """Basic emotion (not neutral) -> its direction [D_v] in the expression space (label-baseline offsets)."""
    lab = bundle.baselines.get("label") or {}
    dirs = {e: np.asarray(v, np.float32) for e, v in lab.items() if e in BASIC_EMOTIONS and e != NEUTRAL}
    if not dirs:
        raise ModelError(
            "the model has no label-baseline offsets: no basic-emotion directions to read edits against"
        )
    return dirs


def nearest_basic(
    offsets: np.ndarray,
    directions: dict[str, np.ndarray],
    neutral_share: float = NEUTRAL_SHARE,
    allowed: Sequence[str] | None = None,
) -> str:
    """Offsets [T, D_v] (or their mean [D_v]) -> the nearest basic emotion's name (see the module docstring)."""
    if allowed is not None:
        directions = {e: d for e, d in directions.items() if e in set(allowed)}
        if not directions:
            raise ModelError(f"no basic-emotion direction among the allowed classes {sorted(allowed)}")
    o = np.asarray(offsets, np.float64)
    o = o.mean(0) if o.ndim == 2 else o
    norm = float(np.linalg.norm(o))
    if norm < neutral_share * min(float(np.linalg.norm(d)) for d in directions.values()):
        return NEUTRAL
    cos = {e: float(o @ d) / (norm * float(np.linalg.norm(d)) + 1e-12) for e, d in directions.items()}
    return max(cos, key=cos.get)


def readout_scores(offsets: np.ndarray, directions: dict[str, np.ndarray]) -> dict[str, float]:
    """Cosine of the edit's mean offset with every basic direction (for display: /expressions, model card)."""
    o = np.asarray(offsets, np.float64)
    o = o.mean(0) if o.ndim == 2 else o
    n = float(np.linalg.norm(o)) + 1e-12
    return {e: round(float(o @ d) / (n * float(np.linalg.norm(d)) + 1e-12), 4) for e, d in directions.items()}


def extended_agreement(
    bundle, held, neutral_share: float = NEUTRAL_SHARE
) -> tuple[dict[str, float], list[dict]]:
    """Agreement of the readout with the speech encoder's own labels on the labelled extended clips of
    ``held`` (a FeatureSet split): metrics ``agree_ext/<method>`` (+ ``n_agree_ext``) and one row a clip."""
    from cmet.infer import predict_offsets_batch, speech_difference, speech_direct

    labels = held.meta.get("ser_labels") or {}
    classes = held.meta.get("ser_classes")
    c = held.clips
    ext = [
        i
        for i in np.flatnonzero(c["extended"].to_numpy())
        if labels.get(str(c["clip_id"].iloc[i])) in BASIC_EMOTIONS
    ]
    if not ext:
        return {}, []
    dirs = basic_directions(bundle)
    rows, seqs, a_c, a_d = [], [], [], []
    for i in ext:
        ident = c["identity"].iloc[i]
        neu = np.flatnonzero(((c["emotion"] == NEUTRAL) & (c["identity"] == ident)).to_numpy())
        if not len(neu):
            continue
        seqs.append(held.frames(int(neu[len(rows) % len(neu)])))
        a_c.append(speech_difference(held.speech[[i]], held.speech[neu]))
        a_d.append(speech_direct(held.speech[[i]]))
        rows.append({"clip_id": str(c["clip_id"].iloc[i]), "identity": str(ident), "emotion": str(c["emotion"].iloc[i]),
                     "ser": labels[str(c["clip_id"].iloc[i])]})  # fmt: skip
    methods = {"cmet": predict_offsets_batch(bundle.connector, seqs, np.stack(a_c))}
    if "speech_direct" in bundle.baselines:
        methods["speech_direct"] = predict_offsets_batch(
            bundle.baselines["speech_direct"], seqs, np.stack(a_d)
        )
    metrics: dict[str, float] = {"n_agree_ext": float(len(rows))}
    for m, offs in methods.items():
        for r, o in zip(rows, offs, strict=True):
            r[m] = nearest_basic(o, dirs, neutral_share, classes)
        metrics[f"agree_ext/{m}"] = float(np.mean([r[m] == r["ser"] for r in rows]))
    return metrics, rows
