"""An emotion timeline: targets that change over the video, cross-faded so that nothing jumps.

A :class:`Timeline` is a sorted tuple of :class:`Segment` ``(start_s, target, intensity,
transition_s)``; each ``target`` is any :class:`cmet.target.Target` (a name, a blend, features,
speech). Segment ``i`` holds from ``start_s`` until the next segment's start; before the first
segment the video is left as it is. ``neutral`` as a target means *no edit* there.

The string, file and mapping forms and the one parser: :mod:`cmet.timeline_parse`.

**Transitions** (:meth:`Timeline.weights`): the cross-fade into segment ``i`` is a raised cosine
``r(t) = (1 - cos(pi * (t - start + tr/2) / tr)) / 2`` over the window ``[start - tr/2, start +
tr/2]`` *centred* on the segment's start (at ``start`` both segments weigh 1/2). Two transition
windows may not overlap: a transition the user gives is checked, a default one is shortened to the
gaps to its neighbours' starts (:meth:`Timeline.fit`). The model's offsets are computed per segment over the frames it weighs
on (the autoregressive chunks condition on that segment's target, started :data:`cmet.infer.WARMUP_CHUNKS`
chunks early on the clip's chunk grid), smoothed, then summed with these weights
(:func:`cmet.infer.timeline_offsets`).

Errors name the entry: unsorted or equal starts, overlapping transitions, a start past the video's
end, an unknown emotion, a negative transition or intensity, a malformed entry (DataError /
UnknownEmotionError: CLI exit 2, service 400).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from cmet.errors import CmetError, DataError
from cmet.target import Target, resolve_target

#: cross-fade length (s) of an entry that does not give one (see the measure in tests/model/test_timeline.py)
DEFAULT_TRANSITION_S = 1.0
NEUTRAL = "neutral"


@dataclass(frozen=True)
class Segment:
    """One entry: from ``start_s`` on, ``target`` at ``intensity`` (times the edit's), reached by a
    cross-fade of ``transition_s`` seconds centred on ``start_s``; ``text`` is the entry as written."""

    start_s: float
    target: Target
    intensity: float = 1.0
    transition_s: float = DEFAULT_TRANSITION_S
    text: str = ""
    default_transition: bool = False  # not given by the user: :meth:`Timeline.fit` shortens it to fit

    @property
    def is_neutral(self) -> bool:
        return self.target.kind == "name" and self.target.emotion == NEUTRAL

    def describe(self) -> str:
        """The entry in the string form (blends with ``+``, parseable again for names and blends)."""
        t = self.target
        what = "+".join(f"{k}={v:.3g}" for k, v in t.blend) if t.kind == "blend" else t.describe()
        return f"{self.start_s:g}:{what}@{self.intensity:g}~{self.transition_s:g}"


@dataclass(frozen=True)
class Timeline:
    """Segments sorted by start, transitions not overlapping (checked on construction)."""

    segments: tuple[Segment, ...]
    source: str = ""  # where it came from when not written out (e.g. "speech track x.wav, 2 windows")

    def __post_init__(self) -> None:
        if not self.segments:
            raise DataError("timeline: no entries")
        for i, s in enumerate(self.segments, 1):
            for name, v in (("start", s.start_s), ("transition", s.transition_s), ("intensity", s.intensity)):
                if not (math.isfinite(v) and v >= 0):
                    raise DataError(f"{entry_label(i, s)}: {name} {v:g} must be a finite number >= 0")
        pairs = list(enumerate(zip(self.segments, self.segments[1:], strict=False), 2))
        for i, (a, b) in pairs:
            if b.start_s <= a.start_s:
                raise DataError(
                    f"{entry_label(i, b)} starts at {b.start_s:g} s, not after entry {i - 1} ({a.start_s:g} s): "
                    "starts must increase"
                )
        for i, (a, b) in pairs:
            a_lo, a_hi = self.window(i - 2)
            b_lo, b_hi = self.window(i - 1)
            if b_lo < a_hi - 1e-9:
                theirs = f"transition ({a_lo:g}-{a_hi:g} s)" if a_hi > a_lo else f"start ({a.start_s:g} s)"
                raise DataError(
                    f"{entry_label(i, b)}: its transition ({b_lo:g}-{b_hi:g} s) overlaps entry {i - 1}'s "
                    f"{theirs}; shorten a transition (~SECONDS)"
                )

    @classmethod
    def fit(cls, segments, source: str = "") -> Timeline:
        """A Timeline whose default transitions (``Segment.default_transition``) are shortened to
        the gaps to the neighbouring starts, so that defaults never overlap (a transition the user
        gave is kept as given and checked)."""
        segs = list(segments)
        starts = [s.start_s for s in segs]
        for i, s in enumerate(segs):
            if not s.default_transition:
                continue
            gaps = [0.0 if i == 0 and s.start_s <= 0 else s.transition_s]  # nothing to fade from
            if i > 0 and starts[i] > starts[i - 1]:
                gaps.append(starts[i] - starts[i - 1])
            if i + 1 < len(segs) and starts[i + 1] > starts[i]:
                gaps.append(starts[i + 1] - starts[i])
            segs[i] = replace(s, transition_s=float(min(gaps)))
        return cls(tuple(segs), source)

    def window(self, i: int) -> tuple[float, float]:
        """The transition window (s) of segment ``i`` (0-based): centred on its start; empty for a
        first segment at 0 (nothing to fade from)."""
        s = self.segments[i]
        if i == 0 and s.start_s <= 0:
            return 0.0, 0.0
        return s.start_s - s.transition_s / 2, s.start_s + s.transition_s / 2

    @classmethod
    def single(cls, target) -> Timeline:
        """One target for the whole video (what ``--emotion`` etc. mean): one segment at 0."""
        return cls((Segment(0.0, Target.of(target), 1.0, 0.0, "whole video"),))

    def describe(self) -> str:
        """The timeline as one line (the provenance tag ``cmet_timeline``)."""
        body = ", ".join(s.describe() for s in self.segments)
        return f"{self.source}: {body}" if self.source else body

    def check_duration(self, duration_s: float, what: str = "the video") -> None:
        """Every entry starts before the end of ``what`` (``duration_s`` seconds), else DataError."""
        for i, s in enumerate(self.segments, 1):
            if s.start_s >= duration_s:
                raise DataError(
                    f"{entry_label(i, s)} starts at {s.start_s:g} s, past the end of {what} ({duration_s:.2f} s)"
                )

    def weights(self, n_frames: int, fps: float) -> np.ndarray:
        """Per-segment weight of every frame: -> [S, n_frames], each column summing to 1 where a
        segment has begun (0 before the first segment fades in: the input's own face)."""
        t = np.arange(n_frames, dtype=np.float64) / float(fps)
        ramps = [
            np.ones_like(t) if self.window(i) == (0.0, 0.0) else fade_in(t, s.start_s, s.transition_s)
            for i, s in enumerate(self.segments)
        ]
        ramps.append(np.zeros_like(t))
        return np.stack([ramps[i] * (1.0 - ramps[i + 1]) for i in range(len(self.segments))])

    def transition_frames(self, n_frames: int, fps: float) -> np.ndarray:
        """[n_frames] bool: frames inside a transition window (where two weights are both > 0, or a
        first segment fades in from the input)."""
        w = self.weights(n_frames, fps)
        return ((w > 1e-9) & (w < 1 - 1e-9)).any(0)


def fade_in(t: np.ndarray, start_s: float, transition_s: float) -> np.ndarray:
    """Raised-cosine ramp 0 -> 1 over ``[start - tr/2, start + tr/2]``: times [T] -> [T] (a step at
    ``start`` for ``tr = 0``)."""
    if transition_s <= 0:
        return (t >= start_s).astype(np.float64)
    x = np.clip((t - (start_s - transition_s / 2)) / transition_s, 0.0, 1.0)
    return 0.5 - 0.5 * np.cos(np.pi * x)


def entry_label(i: int, s: Segment | str) -> str:
    text = s if isinstance(s, str) else s.text
    text = text if len(text) <= 80 else text[:77] + "..."
    return f"timeline entry {i}" + (f" ({text!r})" if text else "")


# ------------------------------------------------------------------------------ model input
@dataclass(frozen=True)
class ResolvedTimeline:
    """A :class:`Timeline` with every target resolved: ``values[i]`` is what
    :meth:`cmet.model.bundle.ModelBundle.predict_segments` takes for segment ``i`` (None = no edit:
    a neutral segment)."""

    timeline: Timeline
    values: tuple
    description: str
    single: bool = False  # one target for the whole video (not a timeline)

    @property
    def value(self):
        """A single target's model input (None for a timeline)."""
        return self.values[0] if self.single else None


def resolve_plan(target, bundle, encoder=None) -> ResolvedTimeline:
    """A :class:`Timeline` (:func:`resolve_timeline`) or one target for the whole video
    (:func:`resolve_target`, a one-segment timeline) -> ResolvedTimeline (one already resolved is
    returned as it is)."""
    if isinstance(target, ResolvedTimeline):
        return target
    if isinstance(target, Timeline):
        return resolve_timeline(target, bundle, encoder)
    value, desc = resolve_target(target, bundle, encoder)
    return ResolvedTimeline(Timeline.single(value), (value,), desc, single=True)


def resolve_timeline(timeline, bundle, encoder=None) -> ResolvedTimeline:
    """Every segment's target through :func:`resolve_target` (speech clips through ``encoder`` or the
    bundle's own); ``neutral`` -> None. An unknown emotion or a bad width -> its error, naming the entry."""
    values = []
    for i, s in enumerate(timeline.segments, 1):
        try:
            values.append(None if s.is_neutral else resolve_target(s.target, bundle, encoder)[0])
        except CmetError as err:
            raise type(err)(f"{entry_label(i, s)}: {err}") from None
    return ResolvedTimeline(timeline, tuple(values), timeline.describe())
