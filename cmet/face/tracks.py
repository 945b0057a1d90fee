"""Per-frame face tracks synthesised from the EMFACS prototypes of :mod:`cmet.face.facs`.

A track is what a disentangled face encoder would read off a talking-face video, per frame at
``fps``:

* ``expr``  [T, D_EXPR]  action-unit intensities (0 = the person's neutral face): the emotion's
  prototype (or a blend of prototypes) x the person's own per-AU gains x the intensity level,
  with onset -> apex dynamics, slow apex fluctuation and small measurement noise;
* ``lips``  [T, D_LIPS]  mouth codes that follow the speech envelope (and the vowel, if known);
* ``pose``  [T, 6]       head rotation (yaw, pitch, roll in degrees / 10) and translation,
  a smooth random motion with nods on loud syllables and an emotion-dependent amount;
* ``blink`` [T]          eyelid closure 0..1 (blinks every ~2-6 s, ~150 ms each).

Functions are pure given the ``numpy.random.Generator`` passed in (deterministic per seed).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from cmet.face.facs import AU_NAMES, D_EXPR, prototype

LIP_NAMES = ("open", "spread", "round", "protrude", "upper_raise", "lower_drop", "open_velocity", "closure")
D_LIPS = len(LIP_NAMES)
POSE_NAMES = ("yaw", "pitch", "roll", "tx", "ty", "tz")
D_POSE = 6
#: intensity level -> fraction of the apex (MEAD's levels 1..3: weak, medium, strong)
LEVEL_SCALE = {1: 0.45, 2: 0.72, 3: 1.0}
#: how much the head moves per emotion (relative)
POSE_ACTIVITY = {
    "angry": 1.4,
    "happy": 1.3,
    "surprised": 1.3,
    "fear": 1.2,
    "disgusted": 1.0,
    "contempt": 0.9,
    "neutral": 0.8,
    "sad": 0.6,
}
#: mean head pitch offset per emotion (degrees / 10, negative = down)
POSE_PITCH = {"sad": -0.6, "contempt": 0.3, "angry": -0.2, "surprised": 0.3}


def identity_gains(rng: np.random.Generator, spread: float = 0.25) -> np.ndarray:
    """A person's own expressivity per action unit: [D_EXPR] gains ~ 1 + N(0, spread), in [0.3, 2]."""
    return np.clip(1.0 + spread * rng.standard_normal(D_EXPR), 0.3, 2.0).astype(np.float32)


def blend_prototype(mix: Mapping[str, float] | str) -> np.ndarray:
    """An emotion name or a blend ``{emotion: weight}`` -> apex code [D_EXPR]."""
    if isinstance(mix, str):
        return prototype(mix)
    return np.sum([w * prototype(e) for e, w in mix.items()], axis=0).astype(np.float32)


def onset_apex_envelope(n: int, fps: float, rng: np.random.Generator) -> np.ndarray:
    """Expression strength over time [n] in [0, ~1.1]: neutral start, onset ramp, apex, partial offset."""
    t = np.arange(n) / fps
    t0 = rng.uniform(0.0, 0.4)  # onset start (s)
    rise = rng.uniform(0.25, 0.7)  # onset duration (s)
    x = np.clip((t - t0) / rise, 0, 1)
    env = x * x * (3 - 2 * x)  # smoothstep
    # apex fluctuation: a slow wobble of +-10 %
    env *= 1.0 + 0.1 * np.sin(2 * np.pi * rng.uniform(0.2, 0.6) * t + rng.uniform(0, 2 * np.pi))
    if n / fps > 1.5 and rng.random() < 0.5:  # partial offset near the end
        t1 = n / fps - rng.uniform(0.3, 0.6)
        y = np.clip((t - t1) / 0.5, 0, 1)
        env *= 1 - 0.3 * y * y * (3 - 2 * y)
    return env.astype(np.float32)


def smooth_noise(n: int, d: int, rng: np.random.Generator, scale: float, width: int = 3) -> np.ndarray:
    """Temporally smoothed Gaussian noise [n, d]."""
    z = rng.standard_normal((n + 2 * width, d))
    k = np.hanning(2 * width + 1)
    k /= k.sum()
    z = np.apply_along_axis(lambda c: np.convolve(c, k, mode="same"), 0, z)[width : width + n]
    return (scale * z / (z.std() + 1e-9)).astype(np.float32)


def expression_track(
    mix: Mapping[str, float] | str,
    n: int,
    fps: float,
    gains: np.ndarray,
    level: int,
    rng: np.random.Generator,
    noise: float = 0.04,
) -> np.ndarray:
    """AU intensities [n, D_EXPR] of one clip: prototype x gains x level x onset/apex envelope + noise."""
    apex = blend_prototype(mix) * gains * LEVEL_SCALE.get(int(level), 1.0)
    env = onset_apex_envelope(n, fps, rng)
    expr = env[:, None] * apex[None, :] + smooth_noise(n, D_EXPR, rng, noise)
    return np.clip(expr, 0.0, 1.6).astype(np.float32)


def blink_track(n: int, fps: float, rng: np.random.Generator, rate_hz: float = 0.3) -> np.ndarray:
    """Eyelid closure [n] in [0, 1]: blinks at Poisson times, ~150 ms raised-cosine each."""
    out = np.zeros(n, np.float32)
    t = rng.exponential(1 / rate_hz) * 0.5
    dur = max(2, int(round(0.15 * fps)))
    w = np.hanning(dur + 2)[1:-1]
    while t * fps < n:
        s = int(t * fps)
        seg = out[s : s + dur]
        out[s : s + dur] = np.maximum(seg, w[: seg.size])
        t += max(0.5, rng.exponential(1 / rate_hz))
    return out


def envelope_at_fps(wave: np.ndarray, sr: int, n: int, fps: float) -> np.ndarray:
    """Speech amplitude envelope [n] in [0, 1] at the video rate (RMS per frame, compressed)."""
    hop = sr / fps
    out = np.zeros(n, np.float32)
    for i in range(n):
        seg = wave[int(i * hop) : int((i + 1) * hop)]
        out[i] = np.sqrt(np.mean(seg.astype(np.float64) ** 2)) if seg.size else 0.0
    db = 20 * np.log10(out + 1e-6)
    top = db.max() if n else 0.0
    return np.clip((db - (top - 40.0)) / 40.0, 0, 1).astype(np.float32)


def lips_track(
    envelope: np.ndarray,
    rng: np.random.Generator,
    vowels: np.ndarray | None = None,
    gain: float = 1.0,
    noise: float = 0.02,
) -> np.ndarray:
    """Mouth codes [n, D_LIPS] following the speech envelope [n] (and vowel shapes [n, 3] if known).

    ``vowels`` columns: openness, spread, rounding of the sounding vowel (0 where silent).
    """
    n = envelope.shape[0]
    env = np.convolve(envelope, [0.25, 0.5, 0.25], mode="same")
    if vowels is None:
        vowels = np.stack([env, 0.3 * env, 0.2 * env], axis=1)
    opn = gain * env * (0.5 + 0.5 * vowels[:, 0])
    spread = vowels[:, 1] * env
    rnd = vowels[:, 2] * env
    vel = np.diff(opn, prepend=opn[:1]) * 5
    closure = np.clip(1 - 4 * env, 0, 1)  # lips together in pauses
    lips = np.stack([opn, spread, rnd, 0.7 * rnd, 0.3 * opn, 0.8 * opn, vel, closure], axis=1)
    return (lips + smooth_noise(n, D_LIPS, rng, noise, 1)).astype(np.float32)


def pose_track(
    n: int,
    fps: float,
    rng: np.random.Generator,
    emotion: str = "neutral",
    envelope: np.ndarray | None = None,
    activity: float | None = None,
) -> np.ndarray:
    """Head pose [n, 6]: sum of slow sinusoids + nods on loud syllables; amount per emotion."""
    a = POSE_ACTIVITY.get(emotion, 1.0) if activity is None else activity
    t = np.arange(n) / fps
    pose = np.zeros((n, D_POSE), np.float32)
    amp = np.array([0.5, 0.3, 0.2, 0.1, 0.06, 0.04]) * a
    for d in range(D_POSE):
        for _ in range(3):
            f = rng.uniform(0.1, 0.8)
            pose[:, d] += amp[d] / 3 * np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi))
        pose[:, d] += rng.normal(0, amp[d] / 3)  # clip-level offset
    pose[:, 1] += POSE_PITCH.get(emotion, 0.0) * (0.5 + 0.5 * rng.random())
    if envelope is not None and n > 2:  # nods: pitch follows loudness peaks, slightly delayed
        nod = np.roll(np.convolve(envelope, np.hanning(7) / 3.5, mode="same"), 2)
        pose[:, 1] -= 0.25 * a * (nod - nod.mean())
    return pose


def make_clip_tracks(
    mix: Mapping[str, float] | str,
    level: int,
    n: int,
    fps: float,
    gains: np.ndarray,
    rng: np.random.Generator,
    envelope: np.ndarray | None = None,
    vowels: np.ndarray | None = None,
    emotion_name: str | None = None,
    expr_noise: float = 0.04,
    lip_gain: float = 1.0,
) -> dict[str, np.ndarray]:
    """All tracks of one clip: {"expr" [n, D_EXPR], "lips" [n, D_LIPS], "pose" [n, 6], "blink" [n]}."""
    if envelope is None:
        envelope = np.zeros(n, np.float32)
    name = emotion_name or (mix if isinstance(mix, str) else max(mix, key=mix.get))
    return {
        "expr": expression_track(mix, n, fps, gains, level, rng, expr_noise),
        "lips": lips_track(envelope, rng, vowels, lip_gain),
        "pose": pose_track(n, fps, rng, name, envelope),
        "blink": blink_track(n, fps, rng),
    }


__all__ = [
    "AU_NAMES",
    "D_LIPS",
    "D_POSE",
    "LEVEL_SCALE",
    "identity_gains",
    "blend_prototype",
    "expression_track",
    "lips_track",
    "pose_track",
    "blink_track",
    "make_clip_tracks",
    "envelope_at_fps",
    "onset_apex_envelope",
]
