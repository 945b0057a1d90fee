"""Speech-driven timeline: a target speech track whose windows each carry an emotion vector.

``cmet edit --timeline-speech PATH`` (the service's ``timeline_speech`` upload) takes

* ``PATH.npy`` ``[W, D_a]`` (or ``[D_a]``: one window): one speech-feature vector a window;
* an audio file (wav, flac, ...) with ``<its folder>/emotion2vec+large_features/<stem>.npy`` ``[W, D_a]``
  beside it (the authors' layout; the folder is the bundle's precomputed speech space);
* an audio file alone: windows of ``hop`` seconds (default :data:`RAW_HOP_S`) cut from the audio and
  encoded with the bundle's speech encoder (:func:`cmet.audio.encoder_for_bundle`); a model whose
  encoder cannot encode raw audio here (the default champion: precomputed emotion2vec+large vectors
  only) gives that encoder's ModelError, naming the fix, before any video work.

**Times of the windows** (window ``i`` edits from its start to the next window's start), first found:

1. ``starts`` given (``"starts_s"`` in a sidecar ``<npy stem>.json`` beside the ``.npy``): explicit
   starts in seconds, increasing, from 0 (uneven windows: clips of different lengths one after another);
2. ``hop`` (``--timeline-hop S``, the service's ``timeline_hop``, or ``"hop_s"`` in the sidecar):
   window ``i`` starts at ``i x S``;
3. an audio track: its ``W`` windows tile its duration evenly (``hop = duration / W``);

else a bare ``.npy`` is a DataError asking for one of them. Each window becomes a ``features``
segment of a :class:`cmet.timeline.Timeline`: its vector minus the neutral mean is its speech
emotion vector (the semantics of a ``--emotion-features`` target), cross-faded into the next over
``min(transition, shortest window)`` seconds. A window starting past the video's end is the
timeline's error (the track is longer than the video).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from cmet.errors import DataError, ModelError
from cmet.target import Target, check_features, load_feature_path
from cmet.timeline import DEFAULT_TRANSITION_S, Segment, Timeline

#: window length (s) cut from raw audio that has no window vectors beside it
RAW_HOP_S = 1.0


def speech_timeline(
    path: str | Path,
    bundle,
    *,
    hop_s: float | None = None,
    transition_s: float = DEFAULT_TRANSITION_S,
    intensity: float = 1.0,
    encoder=None,
    field: str = "--timeline-speech",
    upload: bool = False,
) -> Timeline:
    """A speech track (see the module docstring) -> a Timeline of one ``features`` segment a window.
    ``bundle``: its speech width, speech space and encoder (weights not needed); ``upload``: a file
    sent to the service (no vectors beside it are looked for, its temporary name is not shown)."""
    from cmet.audio.io import AUDIO_EXTS

    path = Path(path)
    name = path.name
    if not path.is_file():
        raise DataError(f"{field}: {path} does not exist")
    if hop_s is not None and not (np.isfinite(hop_s) and hop_s > 0):
        raise DataError(f"{field}: the window hop {hop_s!r} s must be a number > 0")
    if path.suffix.lower() == ".npy":
        feats, sidecar = _windows(path, bundle.d_speech, field), _sidecar(path, field)
        starts = window_starts(len(feats), sidecar, hop_s, None, f"{field} {name}")
    elif path.suffix.lower() in AUDIO_EXTS:
        feats, starts = _audio_windows(path, bundle, hop_s, encoder, field, upload)
    else:
        raise DataError(f"{field}: {name} is neither a .npy of window vectors nor an audio file")
    return windows_timeline(feats, starts, transition_s=transition_s, intensity=intensity, name=name)


def windows_timeline(
    feats: np.ndarray,
    starts: np.ndarray,
    *,
    transition_s: float = DEFAULT_TRANSITION_S,
    intensity: float = 1.0,
    name: str = "",
) -> Timeline:
    """Window vectors [W, D_a] starting at ``starts`` [W] (s, increasing) -> a Timeline of one
    ``features`` segment a window, cross-faded over ``min(transition_s, shortest window)``."""
    starts = np.asarray(starts, np.float64).reshape(-1)
    if len(starts) != len(feats):
        raise DataError(f"speech track {name}: {len(feats)} windows but {len(starts)} start times")
    gaps = np.diff(np.append(starts, np.inf))
    tr = float(min(transition_s, gaps.min()))
    segs = tuple(
        Segment(
            float(s), Target("features", features=f[None]), float(intensity), tr, f"window {i} at {s:.3g} s"
        )
        for i, (s, f) in enumerate(zip(starts, feats, strict=True), 1)
    )
    return Timeline(segs, source=f"speech track {name} ({len(segs)} windows)")


def _windows(path: Path, d_speech: int, field: str) -> np.ndarray:
    """A ``.npy`` of window vectors -> [W, D_a] (checked: width, finite)."""
    return load_feature_path(path, d_speech, f"{field}: the window vectors of")


def _sidecar(npy: Path, field: str) -> dict:
    """``<stem>.json`` beside a window ``.npy``: ``{"hop_s": S}`` or ``{"starts_s": [...]}``, or {}."""
    side = npy.with_suffix(".json")
    if not side.is_file():
        return {}
    try:
        d = json.loads(side.read_text())
    except json.JSONDecodeError as e:
        raise DataError(f"{field}: {side.name} is not valid JSON ({e.msg})") from None
    if not isinstance(d, dict) or not set(d) <= {"hop_s", "starts_s"}:
        raise DataError(f'{field}: {side.name} must be {{"hop_s": S}} or {{"starts_s": [...]}}')
    return d


def window_starts(
    n: int, sidecar: dict, hop_s: float | None, duration_s: float | None, what: str
) -> np.ndarray:
    """The windows' start times (s) [W] by the rules of the module docstring."""
    if hop_s is None and "starts_s" in sidecar:
        try:
            starts = np.asarray(sidecar["starts_s"], np.float64).reshape(-1)
        except (TypeError, ValueError):
            raise DataError(f"{what}: starts_s is not a list of numbers") from None
        if len(starts) != n:
            raise DataError(f"{what}: {n} windows but {len(starts)} starts_s")
        if not np.isfinite(starts).all() or starts[0] < 0 or (np.diff(starts) <= 0).any():
            raise DataError(f"{what}: starts_s must be finite, >= 0 and increasing")
        return starts
    hop = hop_s if hop_s is not None else sidecar.get("hop_s")
    if hop is None and duration_s is not None:
        hop = duration_s / n
    if hop is None:
        raise DataError(
            f"{what}: {n} windows and no times for them: give the window hop (--timeline-hop S / "
            "timeline_hop) or a sidecar .json beside it with hop_s or starts_s"
        )
    try:
        hop = float(hop)
    except (TypeError, ValueError):
        raise DataError(f"{what}: hop_s {hop!r} is not a number") from None
    if not (np.isfinite(hop) and hop > 0):
        raise DataError(f"{what}: the window hop {hop!r} s must be > 0")
    return np.arange(n, dtype=np.float64) * hop


def _audio_windows(
    path: Path, bundle, hop_s, encoder, field: str, upload: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """An audio track -> (window vectors [W, D_a], starts [W]): the vectors beside it, else the raw
    audio's windows through the bundle's encoder."""
    from cmet.audio.encoders import SR
    from cmet.audio.io import load_audio

    spec = bundle.speech_encoder
    subdir = spec.config.get("feature_subdir", "emotion2vec+large_features")
    beside = path.parent / subdir / f"{path.stem}.npy"
    wave, _ = load_audio(path, SR)
    duration = len(wave) / float(SR)
    if spec.config.get("source") == "precomputed" and beside.is_file() and not upload:
        feats = _windows(beside, bundle.d_speech, field)
        return feats, window_starts(
            len(feats), _sidecar(beside, field), hop_s, duration, f"{field} {path.name}"
        )
    hop = float(hop_s or RAW_HOP_S)
    n = max(1, int(round(duration / hop)))
    cuts = [int(round(i * hop * SR)) for i in range(n)] + [len(wave)]
    waves = [wave[a:b] for a, b in zip(cuts, cuts[1:], strict=False)]
    try:
        if encoder is None:
            from cmet.audio import encoder_for_bundle

            encoder = encoder_for_bundle(bundle)
        feats = np.asarray(
            encoder.encode(encoder.check(waves, [f"{path.name} window {i}" for i in range(n)]))
        )
    except ModelError as e:
        where = (
            f"{field}: raw audio"
            if upload
            else f"{field} {path.name}: no {subdir}/{path.stem}.npy window vectors beside it, and"
        )
        raise ModelError(f"{where} {e}") from None
    feats = check_features(feats, bundle.d_speech, f"{field}: the encoder's window vectors of {path.name}")
    return feats, np.asarray(cuts[:-1], np.float64) / SR
