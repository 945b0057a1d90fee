"""C-MET inference: speech semantic vectors (intensity, blends) and the autoregressive offset prediction.

* Speech semantic vector of a target (``[k, D_a]`` target clips vs ``[m, D_a]`` neutral clips):
  the spec's intensity scaling: L2-normalise every embedding, take the difference of the means, then
  renormalise it to the norm of the plain difference ``mean(target) - mean(neutral)`` (the scale the
  connector was trained on) and multiply by ``intensity``. Intensity 0 is defined as *no edit*: the
  offsets are exactly zero, so the edited codes equal the input codes.
* Blend ``{emotion: weight}``: the weighted sum (weights as given) of the emotions' semantic vectors.
* Autoregressive prediction over a whole neutral code sequence ``[L, D_v]`` in chunks of T frames;
  the reference of a chunk is the previous chunk's predicted difference (zeros for the first chunk);
  a last partial chunk is padded by repeating the last frame and trimmed after prediction.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from cmet.errors import DataError

_EPS = 1e-8


def _as_clips(x: np.ndarray, what: str, d: int | None = None) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 1:
        x = x[None, :]
    if x.ndim != 2 or x.shape[0] == 0:
        raise DataError(f"{what} speech embeddings must be [k>=1, D_a]; got shape {x.shape}")
    if d is not None and x.shape[1] != d:
        raise DataError(f"{what} speech embeddings have dimension {x.shape[1]}; the model expects D_a={d}")
    if not np.isfinite(x).all():
        raise DataError(f"{what} speech embeddings contain NaN/inf")
    return x


def speech_difference(target: np.ndarray, neutral: np.ndarray, intensity: float = 1.0) -> np.ndarray:
    """Speech semantic vector with intensity: [k, D_a], [m, D_a] -> [D_a] (see the module docstring)."""
    t = _as_clips(target, "target")
    n = _as_clips(neutral, "neutral", t.shape[1])
    raw = t.mean(0) - n.mean(0)
    tn = t / (np.linalg.norm(t, axis=1, keepdims=True) + _EPS)
    nn_ = n / (np.linalg.norm(n, axis=1, keepdims=True) + _EPS)
    d = tn.mean(0) - nn_.mean(0)
    dn = np.linalg.norm(d)
    if dn < _EPS:
        return np.zeros_like(raw)
    return (d / dn * np.linalg.norm(raw) * float(intensity)).astype(np.float32)


def speech_direct(target: np.ndarray, intensity: float = 1.0) -> np.ndarray:
    """Speech-direct baseline input: the mean target embedding itself (no difference): [k, D_a] -> [D_a]."""
    return (_as_clips(target, "target").mean(0) * float(intensity)).astype(np.float32)


def blend(vectors: dict[str, np.ndarray], weights: dict[str, float]) -> np.ndarray:
    """Weighted sum of named semantic vectors: {e: [D_a]}, {e: w} -> [D_a]."""
    if not weights:
        raise DataError("an emotion blend needs at least one {emotion: weight}")
    out = None
    for e, w in weights.items():
        w = float(w)
        if not np.isfinite(w):
            raise DataError(f"blend weight for {e!r} is not finite: {w}")
        out = vectors[e] * w if out is None else out + vectors[e] * w
    return np.asarray(out, dtype=np.float32)


def check_codes(codes: np.ndarray, d_expr: int) -> np.ndarray:
    """Validate a neutral code sequence [L, D_v] (dimension, NaN, emptiness)."""
    codes = np.asarray(codes, dtype=np.float32)
    if codes.ndim != 2 or codes.shape[1] != d_expr:
        raise DataError(f"neutral expression codes must be [frames, D_v={d_expr}]; got shape {codes.shape}")
    if codes.shape[0] == 0:
        raise DataError("neutral expression code sequence is empty (0 frames)")
    if not np.isfinite(codes).all():
        raise DataError("neutral expression codes contain NaN/inf")
    return codes


def autoregressive_offsets(model, codes, a, window: int):
    """Autoregressive prediction: codes [B, L, D_v], a [B, D_a] (torch) -> offsets [B, L, D_v].

    Chunks of T=window frames; the reference of chunk c is the prediction of chunk c-1 (zeros first).
    """
    import torch

    b, length, dv = codes.shape
    n_chunks = -(-length // window)
    pad = n_chunks * window - length
    if pad:
        codes = torch.cat([codes, codes[:, -1:].expand(b, pad, dv)], dim=1)
    ref = torch.zeros(b, window, dv, dtype=codes.dtype, device=codes.device)
    outs = []
    for c in range(n_chunks):
        ref = model(ref, a, codes[:, c * window : (c + 1) * window])
        outs.append(ref)
    return torch.cat(outs, dim=1)[:, :length]


def predict_offsets_batch(
    model, seqs: Sequence[np.ndarray], a: np.ndarray, device=None, batch_size: int = 256
) -> list[np.ndarray]:
    """Offsets for many sequences at once: list of [L_b, D_v], a [B, D_a] -> list of [L_b, D_v].

    Sequences are grouped in batches, each padded to its longest with the last frame (the autoregressive
    chunks of a sequence never see frames past its end except the padding of its own last chunk).
    """
    import torch

    model.eval()
    device = device or next(model.parameters()).device
    out: list[np.ndarray] = [None] * len(seqs)  # type: ignore[list-item]
    order = np.argsort([len(s) for s in seqs])
    with torch.no_grad():
        for s in range(0, len(order), batch_size):
            idx = order[s : s + batch_size]
            lmax = max(len(seqs[i]) for i in idx)
            x = np.stack(
                [np.concatenate([seqs[i], np.repeat(seqs[i][-1:], lmax - len(seqs[i]), 0)]) for i in idx]
            )
            off = (
                autoregressive_offsets(
                    model,
                    torch.as_tensor(x, dtype=torch.float32, device=device),
                    torch.as_tensor(np.asarray(a)[idx], dtype=torch.float32, device=device),
                    model.window,
                )
                .cpu()
                .numpy()
            )
            for j, i in enumerate(idx):
                out[i] = off[j, : len(seqs[i])]
    return out


#: a timeline segment's autoregressive chain starts this many chunks before the chunk of its first
#: weighted frame, on the whole clip's chunk grid: its offsets then equal the whole clip's chain
#: towards its target (W009_038, sad/surprised: max |diff| <= 0.001 of offsets up to 1.25)
WARMUP_CHUNKS = 4


def timeline_offsets(
    bundle, codes: np.ndarray, resolved, fps: float, *, neutral=None, intensity=1.0, smooth=None
):
    """A timeline's offsets (``resolved``: :class:`cmet.timeline.ResolvedTimeline`): codes [T, D_v] ->
    offsets [T, D_v].

    Per segment, the frames it weighs on (:meth:`cmet.timeline.Timeline.weights`) get the model's
    autoregressive offsets towards that segment's target at ``intensity x segment.intensity`` (its
    chain starts :data:`WARMUP_CHUNKS` chunks earlier on the clip's chunk grid, the warm-up dropped), ``smooth``-ed on their
    own (the edit's One-Euro and lip-AU hold: a held lip AU never mixes two segments), then weighted
    and summed. One segment at 0 is ``smooth(bundle.predict_offsets(codes, ...))``. A segment that
    starts past the end of the codes -> DataError naming it."""
    n = len(codes)
    tl = resolved.timeline
    tl.check_duration(n / float(fps))
    w = tl.weights(n, fps)
    win = int(bundle.model_cfg.get("window", 5))
    jobs = []  # (segment, first weighted frame, end, first frame fed to the model, target, intensity)
    for i, (s, value) in enumerate(zip(tl.segments, resolved.values, strict=True)):
        k = float(intensity) * s.intensity
        nz = np.flatnonzero(w[i] > 0)
        if value is None or k == 0.0 or nz.size == 0:
            continue
        a, b = int(nz[0]), int(nz[-1]) + 1
        jobs.append((i, a, b, max(0, (a // win - WARMUP_CHUNKS) * win), value, k))
    out = np.zeros(np.shape(codes), np.float32)
    if not jobs:
        return out
    spans = [(j[3], j[2]) for j in jobs]
    tracks = bundle.predict_segments(codes, spans, [j[4] for j in jobs], neutral, [j[5] for j in jobs])
    for (i, a, b, a0, _, _), track in zip(jobs, tracks, strict=True):
        track = np.asarray(track[a - a0 :], np.float32)
        if smooth is not None:
            track = smooth(track)
        out[a:b] += (w[i, a:b, None] * track).astype(np.float32)
    return out
