"""``cmet edit``: a neutral talking-face video + a target emotion -> the edited video.

:func:`edit_video` runs these stages, each a function with a typed result (timed in
``EditResult.timings``); the video streams through them (:mod:`cmet.stream`): memory does not grow
with its length or resolution.

0. :func:`aim`     the target (:mod:`cmet.target`: a name, a blend, features, or speech clips through
                   the bundle's encoder) and the neutral reference -> :class:`Aim` (before any video
                   work, so a bad target fails fast).
1. :func:`track`   a tracking pass over the decoded frames (constant frame rate, scaled down): every
                   face followed (FaceMesh, One-Euro smoothed), the faces to edit chosen (the largest,
                   a number, or all), per face its neutral mesh (median of the first
                   ``face.neutral_frames`` tracked frames), per-frame AU / lips / pose codes, frames
                   where it is lost or turned away; the model's input is the slow AU code
                   (:func:`slow_expression`) -> :class:`Tracked` (landmarks on disk, no frames).
2. :func:`predict` per face the C-MET connector's autoregressive offsets ``[T, D_v]``, One-Euro
                   smoothed, the lip-moving AUs (:data:`LIP_AUS`) held over ``face.lip_hold_s``
                   (:func:`hold_lip_offsets`), faded out where the face is lost -> :class:`Predicted`.
3. :func:`render`  a second decode at native size; each face's crop warped by its offset at the
                   working size (its own lips and pose kept, :func:`cmet.face.render.make_renderer`)
                   and pasted back feathered (:mod:`cmet.face.crop`); frames where the face is lost
                   pass through.
4. encode          each frame straight into the H.264 encoder (:class:`cmet.media.VideoSink`), the
                   input's speech (or ``audio``) muxed in, same frame count, size, rate and rotation.

The caller composes the config (``cfg.face`` is read) and names the bundle; nothing here looks a
model up or composes config.
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cmet.errors import ModelError, VideoError
from cmet.media import VideoSink, probe_video
from cmet.target import load_feature_folder
from cmet.timeline import resolve_plan

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


@dataclass
class Tracked:
    """Stage 1: the video's tracking (:class:`cmet.stream.Tracking`: header, faces found, warnings)
    and the faces to edit (:class:`cmet.stream.FacePlan`: codes, weights, crops), largest first."""

    name: str
    tracking: object  # cmet.stream.Tracking
    plans: list  # [cmet.stream.FacePlan]
    timings: dict[str, float]  # landmarks (s)
    tmp: object = None  # the landmark store's TemporaryDirectory (removed with this object)

    @property
    def fps(self) -> float:
        return self.tracking.fps

    @property
    def n_frames(self) -> int:
        return self.tracking.n_frames

    @property
    def neutral_codes(self) -> np.ndarray:
        """[T, D_v] the first edited face's model input."""
        return self.plans[0].neutral_codes


@dataclass(frozen=True)
class Aim:
    """What the edit aims at: the resolved target(s) over time and the neutral reference."""

    value: object  # one target's model input: a name, a {name: weight} blend, [k, D_a]; None: a timeline
    target: str  # description of the target
    neutral: np.ndarray | None  # [m, D_a] neutral speech features; None = the bundle's neutral bank
    plan: object = None  # cmet.timeline.ResolvedTimeline (one segment at 0 for a single target)


@dataclass(frozen=True)
class Predicted:
    """Stage 2: the offsets towards the target, per edited face (weighted: 0 where it is lost)."""

    per_face: tuple  # ([T, D_v], ...) in the order of Tracked.plans
    model_s: float

    @property
    def offsets(self) -> np.ndarray:
        return self.per_face[0]


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
    landmarks: np.ndarray  # [T, 468, 3] input landmarks of the first edited face (memory-mapped)
    target: str = ""
    timings: dict[str, float] = field(default_factory=dict)
    report: dict = field(default_factory=dict)  # faces found and edited, frames passed through, warnings
    _keep: object = None  # keeps the landmark store alive as long as the result

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
            "report": self.report,
        }

    def write_codes(self, path: str | Path) -> Path:
        """The per-frame codes as JSON (:meth:`codes_json`) -> ``path``."""
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps(self.codes_json()))
        return p


def track(
    video: str | Path,
    face,
    *,
    window: int,
    which: str | int = "largest",
    max_seconds: float | None = None,
    progress=False,
) -> Tracked:
    """The tracking pass over ``video`` and the faces to edit (``which``: "largest", "all" or a face
    number, 0 = the largest). Fewer than ``window`` frames (one chunk of the model) -> VideoError; no
    face -> FaceNotFoundError naming the video."""
    from cmet.errors import FaceNotFoundError
    from cmet.stream import plan_face, select_faces, track_faces

    t = time.perf_counter()
    name = Path(str(video)).name
    tmp = tempfile.TemporaryDirectory(prefix="cmet-track-")
    try:
        tr = track_faces(video, Path(tmp.name), max_seconds=max_seconds, progress=progress)
    except FaceNotFoundError:
        raise FaceNotFoundError(f"no face found in {name}") from None
    if tr.n_frames < window:
        raise VideoError(
            f"video {name} has {tr.n_frames} frames, shorter than one chunk of the model (T={window} frames)"
        )
    plans = [
        plan_face(f, rank, tr.fps, face, model_input=slow_expression)
        for rank, f in select_faces(tr.faces, which)
    ]
    return Tracked(name, tr, plans, {"landmarks": time.perf_counter() - t}, tmp)


def aim(target, bundle, neutral=None, video=None) -> Aim:
    """The target or a :class:`cmet.timeline.Timeline` of them (:func:`cmet.timeline.resolve_plan`; its
    starts checked against ``video``'s header) and the neutral reference: speech features [m, D_a], a
    folder of ``.npy``, or None (the neutral bank)."""
    plan = resolve_plan(target, bundle)
    if video is not None and not plan.single:
        plan.timeline.check_duration(probe_video(video, count=False).duration_s)
    if isinstance(neutral, str | Path):
        neutral = load_feature_folder(neutral, bundle.d_speech, "neutral features")
    neutral = None if neutral is None else np.asarray(neutral, np.float32)
    return Aim(plan.value, plan.description, neutral, plan)


def predict(tracked: Tracked, aim: Aim, bundle, face, *, intensity: float = 1.0) -> Predicted:
    """Per edited face, the model's offsets towards ``aim`` on its neutral codes [T, D_v] -> [T, D_v]
    (per timeline segment, cross-faded: :func:`cmet.infer.timeline_offsets`): One-Euro smoothed, the
    lip-moving AUs held (:func:`hold_lip_offsets`), times the face's weight (0 where it is lost or
    turned away, ramped in and out)."""
    from cmet.face.landmarks import one_euro
    from cmet.infer import timeline_offsets

    def smooth(off: np.ndarray) -> np.ndarray:
        if len(off) > 2:
            off = one_euro(off, fps=tracked.fps, min_cutoff=OFFSET_CUTOFF_HZ, beta=0.0)
        return hold_lip_offsets(off, tracked.fps, float(face.lip_hold_s))

    t, out, kw = time.perf_counter(), [], dict(neutral=aim.neutral, intensity=intensity, smooth=smooth)
    for plan in tracked.plans:
        off = timeline_offsets(bundle, plan.neutral_codes, aim.plan, tracked.fps, **kw)
        out.append(off * plan.weights[:, None])
    return Predicted(tuple(out), time.perf_counter() - t)


def render(video: str | Path, tracked: Tracked, pred: Predicted, sink, progress=False, speech=None) -> int:
    """The render pass: every frame of ``video`` decoded again, each edited face warped by its
    offset (clipped to [0, OFFSET_MAX]) in its crop and pasted back, written into ``sink``
    (:class:`cmet.media.VideoSink`) -> the frames written. A face held still (a portrait) with
    ``speech`` gets its jaw from the speech (:func:`cmet.face.portrait_lips.speech_jaw`)."""
    from cmet.face.portrait_lips import speech_jaw
    from cmet.stream import render_stream

    deltas = [np.clip(o, 0.0, OFFSET_MAX) for o in pred.per_face]
    jaws = [speech_jaw(p.landmarks, tracked.fps, speech) for p in tracked.plans]
    return render_stream(video, tracked.tracking, tracked.plans, deltas, sink, jaws=jaws, progress=progress)


class _TimedSink:
    """A sink that adds the seconds spent handing frames to the encoder to ``seconds``."""

    def __init__(self, sink):
        self.sink, self.seconds = sink, 0.0

    def write(self, frame) -> None:
        t = time.perf_counter()
        self.sink.write(frame)
        self.seconds += time.perf_counter() - t


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
    face: str | int = "largest",
    speech_lips: bool = False,
    progress: bool = False,
    threads: int | None = None,
) -> EditResult:
    """Edit ``video`` towards ``target`` (a :class:`cmet.target.Target`, an emotion name or blend, a
    ``{emotion: weight}`` mapping, or speech features [k, D_a]) with ``bundle`` (a ModelBundle or its
    folder) and the composed config ``cfg`` (``cfg.face``). ``face``: "largest" (default), "all", or
    a face number (0 = the largest). Writes ``out`` (mp4 with the input's speech, or ``audio``) when
    given; without ``out`` only the codes are computed. ``EditResult.report`` lists every face found
    and the frames each edited face passed through unedited. ``speech_lips``: a portrait held still
    gets its lips from the speech (``audio``, else the video's own track).

    Given a folder, the bundle's config and banks are read first (the target is checked against them
    before any video work) and its weights load in a helper thread while the video is tracked
    (importing torch alone takes 1-2 s); ``threads``: torch's CPU threads for that load."""
    from cmet.face.facs import D_EXPR
    from cmet.model.bundle import ModelBundle

    timings = {}
    t0 = t = time.perf_counter()
    folder = None if isinstance(bundle, ModelBundle) else Path(bundle)
    # given a folder: sizes and banks now (a broken folder fails here, before the video), weights below
    b = bundle if folder is None else ModelBundle.load(folder, weights=False)
    if int(b.d_expr) != D_EXPR:
        raise ModelError(
            f"the model works in a {b.d_expr}-d expression space; the face renderer needs the "
            f"{D_EXPR} action units of cmet.face.facs (train it with data=release_au)"
        )
    timings["load_model"], t = time.perf_counter() - t, time.perf_counter()
    goal = aim(target, b, neutral, video)  # before the video is tracked: a bad target fails fast
    loading = None if folder is None else ModelBundle.load_async(folder, threads=threads)
    timings["audio"] = time.perf_counter() - t
    window = int(b.model_cfg.get("window", 5))
    tracked = track(video, cfg.face, window=window, which=face, max_seconds=max_seconds, progress=progress)
    if loading is not None:
        t = time.perf_counter()
        b = loading.result()  # the weights (their error, if any, surfaces here)
        timings["wait_model"] = time.perf_counter() - t
    pred = predict(tracked, goal, b, cfg.face, intensity=intensity)
    timings.update(tracked.timings, model=pred.model_s)
    written = None
    if out is not None:
        t = time.perf_counter()
        info = tracked.tracking.info
        src_audio = audio if audio is not None else (video if info.has_audio else None)
        with VideoSink(out, info.w, info.h, tracked.fps, src_audio, rotation=info.rotation) as sink:
            timed = _TimedSink(sink)
            render(video, tracked, pred, timed, progress, src_audio if speech_lips else None)
            t_close = time.perf_counter()
        written = sink.path
        timings["encode"] = timed.seconds + time.perf_counter() - t_close
        timings["render"] = time.perf_counter() - t - timings["encode"]
    timings["total"] = time.perf_counter() - t0
    return _result(tracked, pred, goal, written, timings)


def _result(tracked: Tracked, pred: Predicted, goal: Aim, written, timings) -> EditResult:
    tr, first = tracked.tracking, tracked.plans[0]
    info = tr.info
    report = {
        "video": {
            "w": info.w,
            "h": info.h,
            "fps": tr.fps,
            "rotation": info.rotation,
            "audio": info.has_audio,
        },
        "n_frames": tr.n_frames,
        "faces_found": [f.summary() | {"face": i} for i, f in enumerate(tr.faces)],
        "faces_edited": [p.summary() for p in tracked.plans],
        "frames_passed_through": int(first.summary()["frames_passed_through"]),
        "warnings": list(tr.warnings),
    }
    return EditResult(
        out=written,
        fps=tr.fps,
        n_frames=tr.n_frames,
        neutral_codes=first.neutral_codes,
        offsets=pred.offsets,
        edited_codes=first.neutral_codes + pred.offsets,
        lips=first.codes.lips,
        pose=first.codes.pose,
        landmarks=first.landmarks,
        target=goal.target,
        timings=timings,
        report=report,
        _keep=tracked.tmp,
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
