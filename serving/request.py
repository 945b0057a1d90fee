"""One request object for every edit route.

The routes (/edit, /edit_job/submit, /expressions) take the same form fields (:class:`EditFields`,
:class:`ExpressionFields`: BentoML input specs, so the field list is written once);
:func:`build_request` checks all of them against the limits *before* any work (files by their bytes,
video length, target, neutral reference, intensity) and resolves the target into what the model takes.
The resulting :class:`EditRequest` is what the engine and the job store receive.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from bentoml import IODescriptor
from pydantic import ConfigDict, Field

from cmet.errors import DataError
from cmet.target import Target
from serving.inputs import (
    CheckedVideo,
    Limits,
    check_audio,
    check_image,
    check_intensity,
    check_upload,
    load_features,
    parse_target,
    probe_video,
)


class TargetFields(IODescriptor):
    """The target, neutral reference and intensity fields every edit route takes (a BentoML input spec:
    ``Path`` fields are uploads, handed over as local files)."""

    model_config = ConfigDict(frozen=True)
    # upload fields are typed ``Path`` with a None default (not ``Path | None``): BentoML treats only
    # those as files

    emotion: str | None = Field(None, description="target: an emotion name from /emotions")
    blend: str | dict | None = Field(
        None,
        description="target: weights in [0, 100] normalised to sum 1: happy=0.6,surprised=0.4, happy:0.6,... "
        'or JSON {"happy": 0.6, "surprised": 0.4}',
    )
    target_speech: list[Path] = Field(None, description="target: speech clips that carry the emotion")
    target_features: list[Path] = Field(
        None, description="target: .npy speech features, one file [k, D] or several [D] / [1, D] files"
    )
    neutral_speech: list[Path] = Field(None, description="neutral reference: speech clips")
    neutral_features: Path = Field(None, description="neutral reference: .npy speech features [m, D]")
    intensity: float = Field(1.0, description="how strong the edit is (range: /version limits.intensity)")
    timeline: str | list | dict | None = Field(
        None,
        description="target: emotions over time, 'START:TARGET[@INTENSITY][~TRANSITION], ...' in seconds "
        "(e.g. '0:happy, 2.5:sad, 5:surprised~0.5'; a blend in an entry: 2:happy=0.7+sad=0.3; neutral = no "
        'edit), or JSON [{"start": 0, "emotion": "happy", "intensity": 0.8, "transition": 0.5}, ...]',
    )
    timeline_speech: Path = Field(
        None,
        description="target: a speech track whose windows edit their part of the video: .npy [windows, D] "
        "(with timeline_hop) or audio (windows of timeline_hop s through the model's speech encoder)",
    )
    timeline_hop: float | None = Field(None, description="seconds between timeline_speech windows")
    transition: float | None = Field(
        None, description="default cross-fade (s) of timeline entries that give none (1.0)"
    )


class ExpressionFields(TargetFields):
    """The form fields of /expressions: a video and a target."""

    video: Path = Field(
        description="the talking-face video (mp4, mov, webm, mkv or avi; recognised by its bytes)"
    )


class EditFields(TargetFields):
    """The form fields of /edit and /edit_job/submit: a video, or a portrait with driving speech."""

    video: Path = Field(None, description="the talking-face video (or give portrait + driving_speech)")
    portrait: Path = Field(None, description="a still portrait (png, jpeg or webp) instead of a video")
    driving_speech: Path = Field(None, description="the speech that moves the portrait's lips")


@dataclass(frozen=True)
class EditRequest:
    """A checked edit: the target, what the model takes for it, the inputs, the limits it passed."""

    target: Target
    value: object  # what bundle.predict_offsets takes: a name, a {name: weight} blend, or [k, D_a]
    description: str
    intensity: float
    neutral: np.ndarray | None  # [m, D_a] neutral speech features, None = the bundle's neutral bank
    video: CheckedVideo | None
    portrait: Path | None
    driving_speech: Path | None
    max_s: float
    render: bool = True
    timeline: str | None = None  # the edit's timeline (cmet.timeline.Timeline.describe), for provenance

    @property
    def inputs(self) -> dict[str, Path]:
        """The files the edit still reads (the job store copies these, nothing else)."""
        out = {"video": self.video.path if self.video else None}
        out.update(portrait=self.portrait, driving_speech=self.driving_speech)
        return {k: Path(v) for k, v in out.items() if v is not None}

    def moved(self, paths: dict[str, Path]) -> EditRequest:
        """The same request reading its files from ``paths`` (``inputs`` keys -> new locations)."""
        video = replace(self.video, path=paths["video"]) if self.video and "video" in paths else self.video
        return replace(
            self,
            video=video,
            portrait=paths.get("portrait", self.portrait),
            driving_speech=paths.get("driving_speech", self.driving_speech),
        )


def build_request(
    f: TargetFields, engine, limits: Limits, *, max_s: float, render: bool = True
) -> EditRequest:
    """Check every field of ``f`` before work -> an :class:`EditRequest`. ``engine``: the model
    (emotions, speech dimension, the encoder for speech clips). Raises a CmetError naming the field."""
    intensity = check_intensity(f.intensity, limits)
    video = portrait = speech = None
    f_portrait, f_speech = getattr(f, "portrait", None), getattr(f, "driving_speech", None)
    if render:
        if (f.video is None) == (f_portrait is None):
            raise DataError("give either a video, or a portrait with driving_speech (not both, not neither)")
        if f_portrait is not None and f_speech is None:
            raise DataError("a portrait needs driving_speech (the speech that moves the lips)")
    elif f.video is None:
        raise DataError("video: a video is needed")
    if f.video is not None:
        video = probe_video(f.video, limits, max_s=max_s)
    else:
        portrait = check_image(f_portrait, limits)
        speech = check_audio(f_speech, limits, "driving_speech", max_s=max_s)
    duration_s = video.duration_s if video is not None else _audio_s(speech)
    timeline = _timeline(f, engine, limits, duration_s)
    if timeline is not None:
        target = timeline
        value = engine.resolve_timeline(timeline)
        description = value.description
    else:
        target = parse_target(
            emotion=f.emotion,
            blend=f.blend,
            target_speech=f.target_speech,
            target_features=f.target_features,
            known=engine.emotions,
            d_speech=engine.d_speech,
            limits=limits,
        )
        value, description = engine.resolve(target)
    return EditRequest(
        target=target,
        value=value,
        description=description,
        intensity=intensity,
        neutral=_neutral(f, engine, limits),
        video=video,
        portrait=portrait,
        driving_speech=speech,
        max_s=max_s,
        render=render,
        timeline=None if timeline is None else description,
    )


TIMELINE_FIELDS = ("timeline", "timeline_speech")
OTHER_TARGETS = ("emotion", "blend", "target_speech", "target_features")


def _given(f, names) -> list[str]:
    return [n for n in names if getattr(f, n, None) not in (None, "", [], {})]


def _timeline(f: TargetFields, engine, limits: Limits, duration_s: float):
    """The ``timeline`` / ``timeline_speech`` fields -> a checked :class:`cmet.timeline.Timeline`
    (its starts inside the video), or None when the target is given another way."""
    from cmet.timeline import DEFAULT_TRANSITION_S
    from cmet.timeline_parse import parse_timeline
    from cmet.timeline_speech import speech_timeline, window_starts, windows_timeline
    from serving.sniff import read_npy

    timed, other = _given(f, TIMELINE_FIELDS), _given(f, OTHER_TARGETS)
    if not timed:
        for n in ("timeline_hop", "transition"):
            if getattr(f, n, None) is not None:
                raise DataError(f"{n} goes with timeline or timeline_speech")
        return None
    if len(timed) + len(other) != 1:
        raise DataError(
            "give exactly one target: emotion, blend, target_speech, target_features, timeline or "
            f"timeline_speech; got {timed + other}"
        )
    tr = DEFAULT_TRANSITION_S if f.transition is None else f.transition
    if f.timeline_hop is not None and timed != ["timeline_speech"]:
        raise DataError("timeline_hop goes with timeline_speech")
    if timed == ["timeline"]:
        tl = parse_timeline(f.timeline, transition_s=tr, allow_paths=False, d_speech=engine.d_speech)
    else:
        path = check_upload(f.timeline_speech, "timeline_speech", limits)
        with open(path, "rb") as fh:
            is_npy = fh.read(6) == b"\x93NUMPY"
        if is_npy:
            path = check_upload(path, "timeline_speech", limits, kind="npy")
            feats = read_npy(
                path, "timeline_speech", max_values=limits.max_feature_values, max_abs=limits.max_feature_abs
            )
            feats = feats[None] if feats.ndim == 1 else feats
            if feats.ndim != 2 or feats.shape[1] != engine.d_speech:
                raise DataError(
                    f"timeline_speech: shape {tuple(feats.shape)}; expected [windows, {engine.d_speech}]"
                )
            _entries(len(feats), limits, "timeline_speech windows")
            starts = window_starts(len(feats), {}, f.timeline_hop, None, "timeline_speech")
            tl = windows_timeline(feats, starts, transition_s=tr, name="upload.npy")
        else:
            path = check_audio(path, limits, "timeline_speech")
            tl = speech_timeline(
                path,
                engine.bundle,
                hop_s=f.timeline_hop,
                transition_s=tr,
                field="timeline_speech",
                upload=True,
            )
    _entries(len(tl.segments), limits, "timeline entries")
    tl.check_duration(duration_s)
    return tl


def _entries(n: int, limits: Limits, what: str) -> None:
    from serving.errors import PayloadTooLargeError

    if n > limits.max_timeline_entries:
        raise PayloadTooLargeError(f"{what}: {n}; the limit is {limits.max_timeline_entries}")


def _audio_s(path) -> float:
    from cmet.audio.io import TARGET_SR, load_audio

    return len(load_audio(path)[0]) / float(TARGET_SR) if path is not None else 0.0


def _neutral(f: TargetFields, engine, limits: Limits) -> np.ndarray | None:
    if f.neutral_features is not None and f.neutral_speech:
        raise DataError("give neutral_speech or neutral_features, not both")
    if f.neutral_features is not None:
        return load_features(f.neutral_features, engine.d_speech, limits, field="neutral_features")
    if f.neutral_speech:
        if len(f.neutral_speech) > limits.max_speech_clips:
            raise DataError(
                f"neutral_speech: {len(f.neutral_speech)} clips; the limit is {limits.max_speech_clips}"
            )
        paths = [check_audio(p, limits, "neutral_speech") for p in f.neutral_speech]
        return engine.speech_features(paths, field="neutral_speech")
    return None
