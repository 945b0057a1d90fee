"""Lips for a still portrait: driving speech -> a mouth-opening (jaw) track at the video rate.

A portrait has no lip motion of its own to keep; the speech has to make it. The model is small:

    features [T, 2K+2]: the compressed speech envelope (:func:`cmet.face.tracks.envelope_at_fps`,
                        0 = 40 dB below the loudest frame) at frames t-K..t+K, and the low-band
                        (< 1 kHz) share of the frame's energy x envelope (open vowels are low)
    opening [T] = max(0, features @ coef + intercept)        (IOD units of extra lip gap)

Trained (:func:`fit_release`, ridge) on what the project has: the release's real MEAD speech of
the training speakers (M003, M030, W015; W009 held out) with the generated set's lip tracks
(:func:`cmet.face.tracks.lips_track`, mouth opening), put in IOD units with the real lip track of
``asset/video/W009_038.mp4`` (its 95th percentile of extra inner-lip gap). :data:`COEF` /
:data:`INTERCEPT` hold that fit. On W009_038 itself the frame-wise correlation of the real lip
gap with the envelope is about 0 (mouth open in pauses, closed on loud consonants), so the model
follows the speech's loudness, not the person's articulation. The renderer applies the track as
its jaw (1 unit = 1 IOD of lower-lip drop).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

#: frames of context each side
K = 3
RIDGE = 1.0
#: the fit of :func:`fit_release` (see module doc)
COEF = (-0.0059, -0.0024, 0.0397, 0.0720, 0.0326, 0.0010, -0.0021, 0.0007)
INTERCEPT = -0.008


def frame_features(wave: np.ndarray, sr: int, n: int, fps: float) -> np.ndarray:
    """Speech wave [S] -> per-video-frame features [n, 2K+2] (see module doc)."""
    from cmet.face.tracks import envelope_at_fps

    env = envelope_at_fps(wave, sr, n, fps)
    hop = sr / fps
    low = np.zeros(n, np.float32)
    for i in range(n):
        seg = wave[int(i * hop) : int((i + 1) * hop)].astype(np.float64)
        if seg.size < 8:
            continue
        spec = np.abs(np.fft.rfft(seg * np.hanning(seg.size))) ** 2
        f = np.fft.rfftfreq(seg.size, 1 / sr)
        low[i] = spec[f < 1000].sum() / max(spec.sum(), 1e-12)
    pad = np.pad(env, K, mode="edge")
    ctx = np.stack([pad[k : k + n] for k in range(2 * K + 1)], 1)
    return np.concatenate([ctx, (low * env)[:, None]], 1).astype(np.float32)


@dataclass(frozen=True)
class LipModel:
    coef: np.ndarray  # [2K+2]
    intercept: float

    @classmethod
    def default(cls) -> LipModel:
        return cls(np.asarray(COEF, np.float32), float(INTERCEPT))

    def opening(self, features: np.ndarray) -> np.ndarray:
        """Features [T, 2K+2] -> extra lip gap [T] (IOD units, >= 0)."""
        return np.maximum(0.0, features @ self.coef + self.intercept).astype(np.float32)

    def from_speech(self, wave: np.ndarray, sr: int, n: int, fps: float) -> np.ndarray:
        """Speech wave [S] -> the jaw track [n] of a portrait shown at ``fps``."""
        return self.opening(frame_features(wave, sr, n, fps))


def fit(features: np.ndarray, opening: np.ndarray, ridge: float = RIDGE) -> LipModel:
    """Ridge regression features [T, F] -> opening [T] (intercept unpenalised)."""
    mu, y0 = features.mean(0), opening.mean()
    X, y = features - mu, opening - y0
    coef = np.linalg.solve(X.T @ X + ridge * 1e-2 * np.eye(X.shape[1]), X.T @ y)
    return LipModel(coef.astype(np.float32), float(y0 - mu @ coef))


def w009_pair(release_dir: str | Path) -> tuple[np.ndarray, np.ndarray, float]:
    """(features [T, F], opening above closed [T] (IOD), fps) of the release's W009_038."""
    from cmet.audio import load_audio
    from cmet.face.landmarks import FaceMesh, mouth_opening
    from cmet.media import read_video

    rel = Path(release_dir)
    frames, fps = read_video(rel / "asset" / "video" / "W009_038.mp4")
    mo = mouth_opening(FaceMesh().track(frames, name="W009_038.mp4"))
    wave, _ = load_audio(rel / "asset" / "audio" / "W009_038.wav", 16_000)
    feats = frame_features(wave, 16_000, len(frames), fps)
    return feats, (mo - np.percentile(mo, 5)).astype(np.float32), fps


def fit_w009(release_dir: str | Path, holdout_s: float = 0.0) -> tuple[LipModel, float | None]:
    """The model fitted on W009_038 (all of it, or all but the last ``holdout_s`` seconds) and the
    Pearson r of prediction vs the real lip track on the held-out part (None without one)."""
    feats, mo, fps = w009_pair(release_dir)
    h = int(round(holdout_s * fps))
    if h <= 0:
        return fit(feats, mo), None
    m = fit(feats[:-h], mo[:-h])
    return m, float(np.corrcoef(m.opening(feats[-h:]), mo[-h:])[0, 1])


def release_pairs(
    release_dir: str | Path, speakers=("M003", "M030", "W015"), per_emotion: int = 4, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Features [N, F] and generated mouth-opening codes [N] of MEAD clips of ``speakers``
    (``per_emotion`` clips per speaker and emotion folder, 25 fps)."""
    from cmet.audio import load_audio
    from cmet.face.tracks import envelope_at_fps, lips_track

    rng = np.random.default_rng(seed)
    xs, ys = [], []
    for folder in sorted((Path(release_dir) / "audios" / "MEAD").iterdir()):
        for spk in speakers:
            for wav in sorted(folder.glob(f"{spk}_*.wav"))[:per_emotion]:
                wave, _ = load_audio(wav, 16_000)
                n = int(len(wave) / 16_000 * 25)
                xs.append(frame_features(wave, 16_000, n, 25.0))
                ys.append(lips_track(envelope_at_fps(wave, 16_000, n, 25.0), rng)[:, 0])
    return np.concatenate(xs), np.concatenate(ys)


def fit_release(release_dir: str | Path) -> LipModel:
    """The model of :data:`COEF`: ridge on :func:`release_pairs`, scaled to IOD units so that its
    95th percentile on W009_038's speech equals that of W009_038's real extra lip gap."""
    X, y = release_pairs(release_dir)
    m = fit(X, y)
    feats, mo, _ = w009_pair(release_dir)
    scale = float(np.percentile(mo, 95) / max(np.percentile(m.opening(feats), 95), 1e-6))
    return LipModel((m.coef * scale).astype(np.float32), m.intercept * scale)


def is_still(landmarks: np.ndarray, tol_iod: float = 0.04) -> bool:
    """Landmarks [T, 468, >=2] of a face that never moves (a portrait held still)? Every vertex
    within ``tol_iod`` inter-ocular distances over the first 50 frames and the last (the landmark
    tracker alone jitters ~0.02 IOD on identical frames; a talking face moves its lips more)."""
    from cmet.face.landmarks import inter_ocular

    if len(landmarks) < 2:
        return False
    lm = np.concatenate([np.asarray(landmarks[: min(len(landmarks), 50)]), np.asarray(landmarks[-1:])])
    tol = tol_iod * float(np.median(inter_ocular(lm)))
    return float(np.ptp(lm[..., :2], axis=0).max()) <= tol


def speech_jaw(landmarks: np.ndarray, fps: float, speech: str | Path | None) -> np.ndarray | None:
    """The jaw track [T] for a face held still (landmarks [T, 468, 3]) with driving ``speech`` (a
    wav, or a video with an audio track); None when the face moves (a real video keeps its own
    lips) or there is no speech."""
    from cmet.audio import load_audio
    from cmet.media import has_audio

    if speech is None or not is_still(landmarks) or not has_audio(speech):
        return None
    wave, _ = load_audio(speech, 16_000)
    return LipModel.default().from_speech(wave, 16_000, len(landmarks), fps)
