"""``cmet edit``: a neutral talking-face video + a target emotion -> the edited video.

:func:`edit_video` runs these stages, each a function with a typed result (timed in
``EditResult.timings``):

0. :func:`aim`     the target (:mod:`cmet.target`: a name, a blend, features, or speech clips through
                   the bundle's encoder) and the neutral reference -> :class:`Aim` (before any video
                   work, so a bad target fails fast).
1. :func:`track`   decode (:mod:`cmet.media`), FaceMesh on every frame (One-Euro smoothed), the
                   identity's neutral mesh (median of the first ``face.neutral_frames``), per-frame
                   AU / lips / pose codes (:mod:`cmet.face.expression`); the model's input is the slow
                   AU code (:func:`slow_expression`) -> :class:`Tracked`.
2. :func:`predict` the C-MET connector's autoregressive offsets ``[T, D_v]``, One-Euro smoothed, the
                   lip-moving AUs (:data:`LIP_AUS`) held over ``face.lip_hold_s``
                   (:func:`hold_lip_offsets`) -> :class:`Predicted`.
3. :func:`render`  every frame warped by its offset (its own lips and pose kept) with the video
                   renderer of the face config (:func:`cmet.face.render.make_renderer`).
4. encode          H.264 mp4 with the input's speech (or ``audio``) muxed in, same frame count and fps
                   (:func:`cmet.media.write_video`).

The caller composes the config (``cfg.face`` is read) and names the bundle; nothing here looks a
model up or composes config.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cmet.errors import ModelError, VideoError
from cmet.media import has_audio, read_video, write_video
from cmet.target import load_feature_folder, resolve_target

#: AUs whose fields move the lip vertices (the speech lip track lives there; AU9 lifts the upper lip)
LIP_AUS = (
    "AU9",
    "AU10",
    "AU12",
    "AU14",
    "AU15",
    "AU16",
    "AU17",
    "AU20",
    "AU23",
    "AU24",
    "AU26_emo",
    "R12",
    "R14",
)
#: One-Euro cut-off (Hz) of the predicted offsets: an emotion changes slowly, the chunked
#: prediction steps at chunk borders
OFFSET_CUTOFF_HZ = 0.5
#: rendered offsets are clipped to [0, OFFSET_MAX] x apex: the input is neutral, an edit adds muscle
#: activity and removes none (a negative offset only cancels encoder noise of the input codes)
OFFSET_MAX = 2.0


@dataclass(frozen=True)
class Tracked:
    """Stage 1: the decoded video and its face codes."""

    name: str
    frames: np.ndarray  # [T, H, W, 3] uint8 RGB
    fps: float
    landmarks: np.ndarray  # [T, 468, 3] pixels
    can: object  # cmet.face.expression.Canonical of the identity's neutral mesh
    codes: object  # cmet.face.expression.Codes (au [T, D_v], lips [T, 2], pose [T, 6])
    neutral_codes: np.ndarray  # [T, D_v] slow AU codes: the model's input
    timings: dict[str, float]  # read, landmarks (s)


@dataclass(frozen=True)
class Aim:
    """What the edit aims at: the resolved target and the neutral reference."""

    value: object  # what bundle.predict_offsets takes: a name, a {name: weight} blend, [k, D_a]
    target: str  # description of the target
    neutral: np.ndarray | None  # [m, D_a] neutral speech features; None = the bundle's neutral bank


@dataclass(frozen=True)
class Predicted:
    """Stage 2: the offsets towards the target."""

    offsets: np.ndarray  # [T, D_v]
    model_s: float


@dataclass
class EditResult:
    out: Path | None
    fps: float
    n_frames: int
    neutral_codes: np.ndarray  # [T, D_v] AU codes of the input
    offsets: np.ndarray  # [T, D_v] predicted by the model
    edited_codes: np.ndarray  # [T, D_v]
    lips: np.ndarray  # [T, 2]
    pose: np.ndarray  # [T, 6]
    landmarks: np.ndarray  # [T, 468, 3] input landmarks
    target: str = ""
    timings: dict[str, float] = field(default_factory=dict)

    def codes_json(self) -> dict:
        from cmet.face.facs import AU_NAMES

        r = lambda a: np.round(np.asarray(a, np.float64), 4).tolist()  # noqa: E731
        return {
            "au_names": list(AU_NAMES),
            "fps": self.fps,
            "n_frames": self.n_frames,
            "target": self.target,
            "neutral_codes": r(self.neutral_codes),
            "offsets": r(self.offsets),
            "edited_codes": r(self.edited_codes),
            "lips": r(self.lips),
            "pose": r(self.pose),
            "lips_names": ["mouth_opening", "mouth_width"],
            "pose_names": ["rx", "ry", "rz", "tx", "ty", "log_scale"],
            "timings_s": {k: round(v, 4) for k, v in self.timings.items()},
        }

    def write_codes(self, path: str | Path) -> Path:
        """The per-frame codes as JSON (:meth:`codes_json`) -> ``path``."""
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps(self.codes_json()))
        return p


def track(
    video: str | Path, face, *, window: int, max_seconds: float | None = None, progress=False
) -> Tracked:
    """Decode ``video`` and code its face: frames [T, H, W, 3] -> landmarks [T, 468, 3], codes.
    Fewer than ``window`` frames (one chunk of the model) -> VideoError."""
    from cmet.face.expression import canonical, encode, neutral_reference
    from cmet.face.landmarks import FaceMesh

    t = time.perf_counter()
    frames, fps = read_video(video, max_seconds)
    name = Path(str(video)).name
    if len(frames) < window:
        raise VideoError(
            f"video {name} has {len(frames)} frames, shorter than one chunk of the model (T={window} frames)"
        )
    timings, t = {"read": time.perf_counter() - t}, time.perf_counter()
    landmarks = FaceMesh().track(frames, name=name, progress=progress)
    can = canonical(neutral_reference(landmarks, int(face.neutral_frames)))
    codes = encode(can, landmarks)
    neutral_codes = slow_expression(codes.au, fps)
    timings["landmarks"] = time.perf_counter() - t
    return Tracked(name, frames, fps, landmarks, can, codes, neutral_codes, timings)


def aim(target, bundle, neutral=None) -> Aim:
    """The target (:func:`cmet.target.resolve_target`) and the neutral reference: speech features
    [m, D_a], a folder of ``.npy``, or None (the bundle's neutral bank)."""
    value, desc = resolve_target(target, bundle)
    if isinstance(neutral, str | Path):
        neutral = load_feature_folder(neutral, bundle.d_speech, "neutral features")
    return Aim(value, desc, None if neutral is None else np.asarray(neutral, np.float32))


def predict(tracked: Tracked, aim: Aim, bundle, face, *, intensity: float = 1.0) -> Predicted:
    """The model's offsets towards ``aim`` on the neutral codes [T, D_v] -> [T, D_v]: One-Euro
    smoothed, the lip-moving AUs held (:func:`hold_lip_offsets`)."""
    from cmet.face.landmarks import one_euro

    t = time.perf_counter()
    offsets = bundle.predict_offsets(
        tracked.neutral_codes, aim.value, neutral=aim.neutral, intensity=intensity
    )
    offsets = np.asarray(offsets, np.float32)
    if len(offsets) > 2:
        offsets = one_euro(offsets, fps=tracked.fps, min_cutoff=OFFSET_CUTOFF_HZ, beta=0.0)
    offsets = hold_lip_offsets(offsets, tracked.fps, float(face.lip_hold_s))
    return Predicted(offsets, time.perf_counter() - t)


def render(tracked: Tracked, offsets: np.ndarray, face, progress=False) -> np.ndarray:
    """Every frame warped by its offset with the video renderer of ``face``: [T, H, W, 3] -> same."""
    from cmet.face.render import make_renderer

    rend = make_renderer(face, tracked.can, tracked.frames.shape[1:3], video=True)
    delta = np.clip(offsets, 0.0, OFFSET_MAX)
    out = np.empty_like(tracked.frames)
    it = range(len(out))
    if progress:
        from tqdm import tqdm

        it = tqdm(it, desc="render", unit="frame", leave=False)
    for i in it:
        out[i] = rend.render(tracked.frames[i], tracked.landmarks[i], delta[i])
    return out


def load_bundle(bundle, device=None):
    """A ModelBundle, or the folder of one -> ModelBundle."""
    from cmet.model.bundle import ModelBundle

    return bundle if isinstance(bundle, ModelBundle) else ModelBundle.load(Path(bundle), device)


def edit_video(
    video: str | Path,
    target,
    *,
    bundle,
    cfg,
    out: str | Path | None = None,
    intensity: float = 1.0,
    neutral=None,
    audio: str | Path | None = None,
    max_seconds: float | None = None,
    progress: bool = False,
) -> EditResult:
    """Edit ``video`` towards ``target`` (a :class:`cmet.target.Target`, an emotion name or blend, a
    ``{emotion: weight}`` mapping, or speech features [k, D_a]) with ``bundle`` (a ModelBundle or its
    folder) and the composed config ``cfg`` (``cfg.face``). Writes ``out`` (mp4 with the input's speech,
    or ``audio``) when given; without ``out`` only the codes are computed."""
    from cmet.face.facs import D_EXPR

    face, timings = cfg.face, {}
    t0 = t = time.perf_counter()
    b = load_bundle(bundle)
    if int(b.d_expr) != D_EXPR:
        raise ModelError(
            f"the model works in a {b.d_expr}-d expression space; the face renderer needs the "
            f"{D_EXPR} action units of cmet.face.facs (train it with data=release_au)"
        )
    timings["load_model"], t = time.perf_counter() - t, time.perf_counter()
    goal = aim(target, b, neutral)  # before the video: a bad target fails fast
    timings["audio"] = time.perf_counter() - t
    tracked = track(
        video, face, window=int(b.model_cfg.get("window", 5)), max_seconds=max_seconds, progress=progress
    )
    pred = predict(tracked, goal, b, face, intensity=intensity)
    timings.update(tracked.timings, model=pred.model_s)
    written = None
    if out is not None:
        t = time.perf_counter()
        frames = render(tracked, pred.offsets, face, progress)
        timings["render"], t = time.perf_counter() - t, time.perf_counter()
        src_audio = audio if audio is not None else (video if has_audio(video) else None)
        written = write_video(out, frames, tracked.fps, src_audio)
        timings["encode"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - t0
    codes = tracked.codes
    return EditResult(
        out=written,
        fps=tracked.fps,
        n_frames=len(tracked.frames),
        neutral_codes=tracked.neutral_codes,
        offsets=pred.offsets,
        edited_codes=tracked.neutral_codes + pred.offsets,
        lips=codes.lips,
        pose=codes.pose,
        landmarks=tracked.landmarks,
        target=goal.target,
        timings=timings,
    )


def hold_lip_offsets(offsets: np.ndarray, fps: float, window_s: float = 4.0) -> np.ndarray:
    """Hold the emotional mouth shape: [T, D_EXPR] offsets -> [T, D_EXPR], the :data:`LIP_AUS`
    columns replaced by their running mean over ``window_s`` (a constant for clips shorter than
    the window; 0 = unchanged).

    The model's per-chunk prediction wobbles (std ~0.1-0.15 of apex over a neutral clip); on the
    lip AUs that wobble is lip motion the speech did not make and it lowers the output's
    mouth-opening correlation with the input. A near-constant offset shifts the lip track and keeps
    its shape; an emotion that changes along a speech-driven target still follows at > window_s.
    """
    from scipy.ndimage import uniform_filter1d

    from cmet.face.facs import AU_NAMES

    off = np.array(offsets, np.float32, copy=True)
    k = int(round(window_s * fps))
    if k < 2 or len(off) < 2:
        return off
    cols = [AU_NAMES.index(a) for a in LIP_AUS]
    if k >= len(off):
        off[:, cols] = off[:, cols].mean(0, keepdims=True)
    else:
        off[:, cols] = uniform_filter1d(off[:, cols], size=k, axis=0, mode="nearest")
    return off


def slow_expression(au: np.ndarray, fps: float, window_s: float = 1.0) -> np.ndarray:
    """Running median of AU codes over ``window_s`` [T, D] -> [T, D].

    Expressions change slowly; articulation (4-8 syllables a second) is fast. What a 1-s median
    removes from the mouth AUs is speech lip shape that leaked past the jaw/lips separation; it
    stays in the video's own lips (the renderer never touches it) and out of the model's input.
    """
    from scipy.ndimage import median_filter

    k = max(1, int(round(window_s * fps)) | 1)
    if len(au) < 3 or k == 1:
        return np.asarray(au, np.float32)
    return median_filter(np.asarray(au, np.float32), size=(min(k, len(au) | 1), 1), mode="nearest")
