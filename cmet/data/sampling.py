"""Semantic vectors and training-pair sampling, exactly as the C-MET spec describes them.

* A semantic vector is a difference of **k-clip means**: ``a_{i->j} = mean(A(clips of j)) -
  mean(A(clips of i))`` (speech) and ``v_{i->j} = mean(E(clips of j)) - mean(E(clips of i))``
  (expression; E of a clip = time mean of its per-frame codes). k comes from config (default 10);
  a cell with fewer clips uses what exists; a cell with fewer than ``min_clips`` (but more than 0)
  raises :class:`~cmet.errors.TooFewClipsError` naming identity, emotion and level.
* A training sample: one identity, one level, an ordered pair of distinct emotions (i, j) among the
  training emotions, neutral included as source and as target; **same identity and level on both
  sides**, neutral clips taken at level 1. Both directions are trained (the backward pass of the
  trainer uses j -> i with the negated inputs).
* A random window of T frames of a clip of i (and, for the backward pass, of a clip of j); the
  reference for the window is the target difference of the T frames before it, i.e. ``v_{i->j}``
  on every frame, and zeros when the window starts within the first T frames of the clip (no
  previous chunk), mirroring autoregressive inference where the first chunk has a zero reference.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cmet.data.features import NEUTRAL, FeatureSet
from cmet.errors import DataError, TooFewClipsError


def kclip_mean(x: np.ndarray) -> np.ndarray:
    """Mean of k clip-level vectors: [k, D] -> [D]. Raises DataError on an empty or non-finite input."""
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 1:
        x = x[None, :]
    if x.ndim != 2 or x.shape[0] == 0:
        raise DataError(f"a semantic-vector mean needs [k>=1, D] clip vectors; got shape {x.shape}")
    if not np.isfinite(x).all():
        raise DataError("clip vectors for a semantic-vector mean contain NaN/inf")
    return x.mean(axis=0)


def semantic_vector(target: np.ndarray, source: np.ndarray) -> np.ndarray:
    """``mean(target) - mean(source)``: [k, D], [m, D] -> [D] (speech a_{i->j} or visual v_{i->j})."""
    t, s = kclip_mean(target), kclip_mean(source)
    if t.shape != s.shape:
        raise DataError(f"target and source clip vectors differ in dimension: {t.shape[0]} vs {s.shape[0]}")
    return t - s


@dataclass
class Batch:
    """One training batch (numpy float32; B samples, window T, dims D_a, D_v).

    ``x_src [B,T,D_v]`` window of a clip of i; ``x_tgt [B,T,D_v]`` window of a clip of j;
    ``ref [B,T,D_v]`` forward reference (backward uses ``-ref``); ``a [B,D_a]`` = a_{i->j};
    ``v [B,D_v]`` = v_{i->j}; ``a_src``/``a_tgt [B,D_a]`` the k-clip speech means of i and j (for the
    speech-direct baseline); ``emo_src``/``emo_tgt [B]`` emotion indices.
    """

    x_src: np.ndarray
    x_tgt: np.ndarray
    ref: np.ndarray
    a: np.ndarray
    v: np.ndarray
    a_src: np.ndarray
    a_tgt: np.ndarray
    emo_src: np.ndarray
    emo_tgt: np.ndarray


class CellIndex:
    """Clips grouped by cell (identity, emotion, level) of one FeatureSet, with clip-level vectors.

    ``emotions`` restricts the cells (e.g. the training emotions); neutral cells are taken at level 1
    only. Raises TooFewClipsError for a cell with 0 < n < min_clips clips.
    """

    def __init__(self, fs: FeatureSet, emotions: list[str], min_clips: int = 3, neutral_level: int = 1):
        self.fs = fs
        self.emotions = list(emotions)
        self.emo_index = {e: i for i, e in enumerate(self.emotions)}
        c = fs.clips
        self.speech = fs.speech.astype(np.float32)
        self.clip_expr = fs.clip_mean_expr()
        self.starts = c["frame_start"].to_numpy()
        self.lens = c["n_frames"].to_numpy()
        self.cells: dict[tuple[str, str, int], np.ndarray] = {}
        for (ident, emo, lv), idx in c.groupby(["identity", "emotion", "level"]).indices.items():
            if emo not in self.emo_index or (emo == NEUTRAL and lv != neutral_level):
                continue
            if len(idx) < min_clips:
                raise TooFewClipsError(
                    f"identity {ident!r}, emotion {emo!r}, level {lv}: {len(idx)} clip(s), fewer than "
                    f"min_clips={min_clips} needed for a semantic-vector mean"
                )
            self.cells[(str(ident), str(emo), int(lv))] = np.sort(np.asarray(idx))
        self.neutral_level = neutral_level

    def cell(self, identity: str, emotion: str, level: int) -> np.ndarray:
        lv = self.neutral_level if emotion == NEUTRAL else int(level)
        key = (identity, emotion, lv)
        if key not in self.cells:
            raise DataError(f"no clips for identity {identity!r}, emotion {emotion!r}, level {lv}")
        return self.cells[key]

    def pairs(self) -> list[tuple[str, int, str, str]]:
        """Every (identity, level, emotion i, emotion j), i != j, with clips on both sides."""
        out = []
        idents = sorted({k[0] for k in self.cells})
        levels = sorted({k[2] for k in self.cells if k[1] != NEUTRAL}) or [self.neutral_level]
        for ident in idents:
            for lv in levels:
                avail = [
                    e
                    for e in self.emotions
                    if (ident, e, self.neutral_level if e == NEUTRAL else lv) in self.cells
                ]
                out += [(ident, lv, i, j) for i in avail for j in avail if i != j]
        return out


class PairSampler:
    """Draws training batches (see the module docstring) with its own numpy Generator.

    The generator state is part of a training checkpoint (``state()`` / ``set_state()``), so a resumed
    run draws the same batches as an uninterrupted one.
    """

    def __init__(
        self,
        fs: FeatureSet,
        emotions: list[str],
        window: int,
        k_clips: int = 10,
        min_clips: int = 3,
        seed: int = 0,
        ref_drop: float = 0.0,
    ):
        self.index = CellIndex(fs, emotions, min_clips=min_clips)
        self.window = int(window)
        self.k = int(k_clips)
        self.rng = np.random.default_rng(seed)
        self.ref_drop = float(ref_drop)
        self.last_pairs: np.ndarray = np.zeros(0, np.int64)
        self.expr = fs.expr.astype(np.float32)
        pairs = self.index.pairs()
        if not pairs:
            raise DataError(
                "no training pairs: need at least two emotions with clips for the same identity and level"
            )
        cell_keys = list(self.index.cells)
        key_pos = {k: i for i, k in enumerate(cell_keys)}
        nl = self.index.neutral_level

        def key(ident, e, lv):
            return key_pos[(ident, e, nl if e == NEUTRAL else lv)]

        self.pair_src = np.array([key(p[0], p[2], p[1]) for p in pairs])
        self.pair_tgt = np.array([key(p[0], p[3], p[1]) for p in pairs])
        self.pair_emo_src = np.array([self.index.emo_index[p[2]] for p in pairs])
        self.pair_emo_tgt = np.array([self.index.emo_index[p[3]] for p in pairs])
        self.pairs = pairs
        n_max = max(len(v) for v in self.index.cells.values())
        self.cell_mat = np.full((len(cell_keys), n_max), -1, dtype=np.int64)
        for i, k in enumerate(cell_keys):
            self.cell_mat[i, : len(self.index.cells[k])] = self.index.cells[k]
        self.cell_n = (self.cell_mat >= 0).sum(1)

    # ------------------------------------------------------------ rng state
    def state(self) -> dict:
        return self.rng.bit_generator.state

    def set_state(self, state: dict) -> None:
        self.rng.bit_generator.state = state

    # ----------------------------------------------------------------- draw
    def _draw_k(self, cells: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """k random clips (without replacement) of each cell: ([B,k] clip ids, [B,k] valid mask)."""
        r = self.rng.random((len(cells), self.cell_mat.shape[1]))
        r[self.cell_mat[cells] < 0] = np.inf
        order = np.argsort(r, axis=1)[:, : self.k]
        ids = np.take_along_axis(self.cell_mat[cells], order, axis=1)
        mask = np.arange(order.shape[1])[None, :] < np.minimum(self.cell_n[cells], self.k)[:, None]
        return ids, mask

    def _mean(self, table: np.ndarray, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        x = table[np.where(mask, ids, 0)] * mask[..., None]
        return x.sum(1) / mask.sum(1, keepdims=True)

    def _window(self, clip: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """A random T-frame window of each clip: ([B,T,D_v] codes, [B] start frame)."""
        n = self.index.lens[clip]
        t0 = (self.rng.random(len(clip)) * np.maximum(n - self.window + 1, 1)).astype(np.int64)
        t = np.minimum(t0[:, None] + np.arange(self.window)[None, :], (n - 1)[:, None])
        return self.expr[self.index.starts[clip][:, None] + t], t0

    def sample(self, batch_size: int) -> Batch:
        p = self.rng.integers(0, len(self.pairs), batch_size)
        src, tgt = self.pair_src[p], self.pair_tgt[p]
        ids_s, m_s = self._draw_k(src)
        ids_t, m_t = self._draw_k(tgt)
        a_src = self._mean(self.index.speech, ids_s, m_s)
        a_tgt = self._mean(self.index.speech, ids_t, m_t)
        v = self._mean(self.index.clip_expr, ids_t, m_t) - self._mean(self.index.clip_expr, ids_s, m_s)
        x_src, t0 = self._window(ids_s[:, 0])
        x_tgt, _ = self._window(ids_t[:, 0])
        has_prev = (t0 >= self.window).astype(np.float32)
        if self.ref_drop > 0:
            has_prev *= (self.rng.random(batch_size) >= self.ref_drop).astype(np.float32)
        self.last_pairs = p
        ref = np.repeat(v[:, None, :], self.window, axis=1) * has_prev[:, None, None]
        return Batch(
            x_src=x_src.astype(np.float32),
            x_tgt=x_tgt.astype(np.float32),
            ref=ref.astype(np.float32),
            a=(a_tgt - a_src).astype(np.float32),
            v=v.astype(np.float32),
            a_src=a_src.astype(np.float32),
            a_tgt=a_tgt.astype(np.float32),
            emo_src=self.pair_emo_src[p],
            emo_tgt=self.pair_emo_tgt[p],
        )
