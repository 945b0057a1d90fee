"""A feature-level simulator of C-MET's premises (for tests and quick runs; not a benchmark).

Assumptions (nothing more is built in; parameters in ``configs/data/simulator.yaml``, every ``*_scale``
/ ``*_noise`` is the expected L2 norm of that part):

* **Speech embedding** of a clip ``[D_a]`` = speaker part (one random vector per identity) + sentence
  part (one random vector per sentence of a shared pool) + emotion part (one random direction per basic
  emotion, ``emotion_scale`` x ``level_gain[level]``; neutral is the origin) + isotropic noise.
  Emotion is therefore entangled with speaker and words in a single embedding, and a *difference* of
  k-clip means of the same speaker cancels the speaker part and averages the sentence part down.
* **Extended emotions** (held out of training): their emotion part, in speech and face alike, is the
  configured blend of basic ones (e.g. sarcastic = 0.6 contempt + 0.4 happy).
* **Expression codes** ``[T, D_v]`` per frame = identity part (the person's neutral face, constant)
  + emotion part x per-identity gains (``1 + N(0, gain_spread)`` per code) x ``level_gain[level]``
  x an onset envelope (neutral -> apex over ``onset_frames``, then apex) + per-frame noise.
  With ``expr_basis: facs`` the emotion part of a basic emotion is its EMFACS prototype
  (:mod:`cmet.face.facs`), so codes are action-unit intensities; ``random`` uses random directions.
* **Lips and pose** are separate codes, independent of emotion: lips a smooth speech-like
  oscillation, pose a smooth small random walk.
* Identities are split train/val/test (held-out identities); neutral clips exist at level 1 only
  (twice as many), extended emotions at ``extended_levels``. Everything is deterministic from ``seed``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cmet.audio.spec import SIMULATED, EncoderSpec
from cmet.data.features import NEUTRAL, FeatureSet
from cmet.errors import ConfigError


def _rand_dir(rng: np.random.Generator, n: int, d: int, norm: float) -> np.ndarray:
    """[n, d] random directions of the given L2 norm."""
    v = rng.standard_normal((n, d))
    return (v / np.linalg.norm(v, axis=1, keepdims=True) * norm).astype(np.float64)


def _iso_noise(rng: np.random.Generator, shape: tuple[int, ...], norm: float) -> np.ndarray:
    """Gaussian noise whose expected L2 norm over the last axis is ``norm``."""
    return rng.standard_normal(shape) * (norm / np.sqrt(shape[-1]))


def _expr_basis(sc, emotions: list[str], rng: np.random.Generator) -> dict[str, np.ndarray]:
    d = int(sc.d_expr)
    basic = [e for e in emotions if e != NEUTRAL]
    if sc.expr_basis == "facs":
        from cmet.face.facs import D_EXPR, prototype

        if d != D_EXPR:
            raise ConfigError(f"data.expr_basis=facs needs data.d_expr={D_EXPR} (the AU count); got {d}")
        out = {e: prototype(e).astype(np.float64) * float(sc.expr_scale) for e in basic}
    elif sc.expr_basis == "random":
        dirs = _rand_dir(rng, len(basic), d, float(sc.expr_scale))
        out = dict(zip(basic, dirs, strict=True))
    else:
        raise ConfigError(f"data.expr_basis must be 'facs' or 'random'; got {sc.expr_basis!r}")
    out[NEUTRAL] = np.zeros(d)
    return out


def _blend(parts: dict[str, np.ndarray], weights: dict[str, float], name: str) -> np.ndarray:
    unknown = set(weights) - set(parts)
    if unknown:
        raise ConfigError(f"extended emotion {name!r} blends unknown emotion(s) {sorted(unknown)}")
    return sum(float(w) * parts[e] for e, w in weights.items())


def simulate(sc) -> FeatureSet:
    """Simulate a FeatureSet from the ``data`` config node ``sc`` (see the module docstring)."""
    rng = np.random.default_rng(int(sc.seed))
    emotions = list(sc.emotions)
    if NEUTRAL not in emotions:
        raise ConfigError("data.emotions must include 'neutral' (the source of every edit)")
    extended = {str(k): dict(v) for k, v in (sc.extended or {}).items()}
    levels = [int(x) for x in sc.levels]
    gains = [float(g) for g in sc.level_gain]
    if len(gains) < max(levels):
        raise ConfigError(f"data.level_gain needs one gain per level up to {max(levels)}; got {gains}")
    d_a, d_v, d_l, d_p = int(sc.d_speech), int(sc.d_expr), int(sc.d_lips), int(sc.d_pose)
    basic = [e for e in emotions if e != NEUTRAL]

    # ---- parts shared by all clips
    sp_emo = dict(zip(basic, _rand_dir(rng, len(basic), d_a, float(sc.emotion_scale)), strict=True))
    sp_emo[NEUTRAL] = np.zeros(d_a)
    ex_emo = _expr_basis(sc, emotions, rng)
    for name, w in extended.items():
        sp_emo[name] = _blend(sp_emo, w, name)
        ex_emo[name] = _blend(ex_emo, w, name)
    sentences = _rand_dir(rng, int(sc.sentences), d_a, float(sc.content_scale))

    ids: list[tuple[str, str]] = []
    for split in ("train", "val", "test"):
        for _ in range(int(sc.identities.get(split, 0))):
            ids.append((f"{sc.name}_id{len(ids):02d}", split))
    f_lo, f_hi = (int(x) for x in sc.frames)
    on_lo, on_hi = (int(x) for x in sc.onset_frames)
    fps = float(sc.fps)

    rows, speech, expr, lips, pose = [], [], [], [], []
    for ident, split in ids:
        speaker = _rand_dir(rng, 1, d_a, float(sc.speaker_scale))[0]
        face = _rand_dir(rng, 1, d_v, float(sc.identity_scale))[0]
        gain = 1.0 + rng.standard_normal(d_v) * float(sc.gain_spread)
        cells = [(NEUTRAL, 1, 2 * int(sc.clips_per_cell), False)]
        cells += [(e, lv, int(sc.clips_per_cell), False) for e in basic for lv in levels]
        cells += [(e, lv, int(sc.clips_per_cell), True) for e in extended for lv in sc.extended_levels]
        for emo, lv, n_clips, is_ext in cells:
            g = gains[lv - 1]
            for c in range(n_clips):
                n = int(rng.integers(f_lo, f_hi + 1))
                sent = int(rng.integers(len(sentences)))
                a = (
                    speaker
                    + sentences[sent]
                    + g * sp_emo[emo]
                    + _iso_noise(rng, (d_a,), float(sc.speech_noise))
                )
                onset = int(rng.integers(on_lo, on_hi + 1)) if emo != NEUTRAL else 1
                t = np.arange(n)
                env = np.clip(t / max(onset, 1), 0, 1)
                env = env * env * (3 - 2 * env)  # smoothstep neutral -> apex
                codes = face + env[:, None] * (g * gain * ex_emo[emo])[None, :]
                codes = codes + _iso_noise(rng, (n, d_v), float(sc.expr_noise))
                freq = rng.uniform(2.0, 5.0, d_l)
                phase = rng.uniform(0, 2 * np.pi, d_l)
                lp = np.sin(2 * np.pi * freq[None, :] * t[:, None] / fps + phase[None, :]) * 0.5
                ps = np.cumsum(rng.standard_normal((n, d_p)) * 0.01, axis=0)
                cid = f"{ident}_{emo}_L{lv}_{c:03d}"
                rows.append(
                    dict(
                        clip_id=cid,
                        identity=ident,
                        emotion=emo,
                        level=lv,
                        sentence=f"s{sent:03d}",
                        split=split,
                        n_frames=n,
                        fps=fps,
                        duration_s=n / fps,
                        extended=is_ext,
                    )
                )
                speech.append(a)
                expr.append(codes)
                lips.append(lp)
                pose.append(ps)
    clips = pd.DataFrame(rows)
    meta = dict(
        source="simulator",
        name=str(sc.name),
        speech_encoder=EncoderSpec(SIMULATED, int(np.stack(speech).shape[1]), {}).to_dict(),
        expression_space="facs_au" if sc.expr_basis == "facs" else "random",
        seed=int(sc.seed),
        extended_blends=extended,
    )
    return FeatureSet(
        clips,
        np.stack(speech).astype(np.float32),
        np.concatenate(expr).astype(np.float32),
        np.concatenate(lips).astype(np.float32),
        np.concatenate(pose).astype(np.float32),
        meta,
    )


def build(cfg) -> FeatureSet:
    """``build_feature_set`` entry point: simulate from ``cfg.data`` (deterministic from its seed)."""
    return simulate(cfg.data).validate()
