"""Sampling exactly as the spec: k-clip means, same identity and level, both directions, windows."""

from __future__ import annotations

import numpy as np
import pytest

from cmet.data.features import NEUTRAL
from cmet.data.sampling import CellIndex, PairSampler, kclip_mean, semantic_vector
from cmet.errors import DataError, TooFewClipsError


def test_splits_are_identity_disjoint(tiny_features):
    ids = {s: set(tiny_features.split(s).clips["identity"]) for s in ("train", "val", "test")}
    assert ids["train"] and ids["test"]
    assert not ids["train"] & ids["test"]
    assert not ids["train"] & ids["val"]
    assert not ids["val"] & ids["test"]


def test_sampler_uses_only_training_identities_same_level(tiny_features):
    train = tiny_features.split("train")
    s = PairSampler(train, train.train_emotions, window=5, k_clips=5, min_clips=3, seed=0)
    train_ids = set(train.clips["identity"])
    seen_dirs = set()
    for _ in range(30):
        s.sample(64)
        for p in s.last_pairs:
            ident, lv, i, j = s.pairs[p]
            assert ident in train_ids
            seen_dirs.add((i, j))
    for ident, lv, i, j in s.pairs[::7]:  # a spread-out subset of the pair list (pandas look-ups are slow)
        assert i != j
        src = s.index.cell(ident, i, lv)
        tgt = s.index.cell(ident, j, lv)
        for side, emo in ((src, i), (tgt, j)):
            rows = train.clips.iloc[side]
            assert set(rows["identity"]) == {ident}
            assert set(rows["emotion"]) == {emo}
            assert set(rows["level"]) == ({1} if emo == NEUTRAL else {lv})
    # both directions, neutral as source and as target
    assert ("neutral", "happy") in seen_dirs and ("happy", "neutral") in seen_dirs
    assert ("angry", "sad") in seen_dirs and ("sad", "angry") in seen_dirs
    # extended emotions never enter training
    assert not {e for d in seen_dirs for e in d} & set(tiny_features.extended_emotions)


def test_batch_vectors_are_kclip_mean_differences(tiny_features):
    train = tiny_features.split("train")
    k = 4
    s = PairSampler(train, train.train_emotions, window=5, k_clips=k, min_clips=3, seed=1)
    # recompute with the same generator state
    state = s.state()
    b = s.sample(8)
    s.set_state(state)
    p = s.rng.integers(0, len(s.pairs), 8)
    ids_s, m_s = s._draw_k(s.pair_src[p])
    ids_t, m_t = s._draw_k(s.pair_tgt[p])
    for n in range(8):
        src = ids_s[n][m_s[n]]
        tgt = ids_t[n][m_t[n]]
        assert len(src) == min(k, s.cell_n[s.pair_src[p][n]]) and len(set(src)) == len(src)
        a = semantic_vector(train.speech[tgt], train.speech[src])
        v = semantic_vector(s.index.clip_expr[tgt], s.index.clip_expr[src])
        np.testing.assert_allclose(b.a[n], a, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(b.v[n], v, rtol=1e-5, atol=1e-5)
        # reference: v_{i->j} on every frame, or zeros at the start of a clip
        ref = b.ref[n]
        assert np.allclose(ref, 0) or np.allclose(ref, np.repeat(v[None], 5, 0), atol=1e-5)
    assert b.x_src.shape == (8, 5, train.d_expr) and b.a.shape == (8, train.d_speech)


def test_fewer_clips_than_k_uses_what_exists(tiny_features):
    train = tiny_features.split("train")
    s = PairSampler(train, train.train_emotions, window=5, k_clips=50, min_clips=3, seed=2)
    b = s.sample(4)
    for n, p in enumerate(s.last_pairs):
        ident, lv, i, j = s.pairs[p]
        src, tgt = s.index.cell(ident, i, lv), s.index.cell(ident, j, lv)
        v = s.index.clip_expr[tgt].mean(0) - s.index.clip_expr[src].mean(0)
        np.testing.assert_allclose(b.v[n], v, rtol=1e-5, atol=1e-5)


def test_reference_is_zero_at_clip_start_and_v_later(tiny_features):
    train = tiny_features.split("train")
    s = PairSampler(train, train.train_emotions, window=5, k_clips=5, min_clips=3, seed=3)
    b = s.sample(512)
    zero = np.abs(b.ref).sum((1, 2)) == 0
    assert 0 < zero.mean() < 0.6  # starts within the first T frames are a minority of windows


def test_too_few_clips_names_the_cell(tiny_features):
    train = tiny_features.split("train")
    c = train.clips
    ident = c["identity"].iloc[0]
    drop = (c["identity"] == ident) & (c["emotion"] == "happy") & (c["level"] == 2)
    keep = ~drop.to_numpy()
    keep[np.flatnonzero(drop.to_numpy())[:2]] = True  # leave 2 clips in that cell
    small = train.subset(keep)
    with pytest.raises(TooFewClipsError, match=rf"{ident}.*happy.*level 2.*2 clip"):
        CellIndex(small, small.train_emotions, min_clips=3)


def test_kclip_mean_rejects_bad_input():
    with pytest.raises(DataError, match="NaN"):
        kclip_mean(np.array([[1.0, np.nan]]))
    with pytest.raises(DataError, match="k>=1"):
        kclip_mean(np.zeros((0, 3)))
    with pytest.raises(DataError, match="dimension"):
        semantic_vector(np.zeros((2, 3)), np.zeros((2, 4)))
