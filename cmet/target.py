"""The target of an edit: one frozen :class:`Target`, one blend parser, one resolution into model input.

A target is exactly one of

* ``name``     an emotion the model has a speech bank for (``"happy"``);
* ``blend``    weights over named emotions (``happy=0.7,surprised=0.3``);
* ``features`` speech features ``[k, D_a]`` computed elsewhere (e.g. emotion2vec ``.npy`` files);
* ``speech``   speech clips, encoded with the bundle's own speech encoder.

Blend semantics (the one definition, CLI and service alike): every weight is a finite number in
``[0, 100]``, at least one is > 0, an emotion appears once; the weights are normalised to sum 1, so
``happy=7,sad=3`` is ``happy=0.7,sad=0.3``. How strong the edit is stays the separate ``intensity``.
The semantic vector of a blend is the weighted sum of its emotions' vectors (:func:`cmet.infer.blend`).

:func:`resolve_target` is the one place a target becomes what
:meth:`cmet.model.bundle.ModelBundle.predict_offsets` takes.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cmet.errors import DataError, ModelError, UnknownEmotionError

KINDS = ("name", "blend", "features", "speech")
MAX_WEIGHT = 100.0


@dataclass(frozen=True, eq=False)
class Target:
    """What the user asked for. ``blend``: ``((emotion, weight), ...)`` normalised to sum 1;
    ``features``: ``[k, D_a]`` float32; ``speech_paths``: audio (or precomputed ``.npy``) files."""

    kind: str
    emotion: str | None = None
    blend: tuple[tuple[str, float], ...] = ()
    features: np.ndarray | None = None
    speech_paths: tuple[Path, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise DataError(f"target kind {self.kind!r}; expected one of {KINDS}")
        given = {
            "name": bool(self.emotion),
            "blend": bool(self.blend),
            "features": self.features is not None,
            "speech": bool(self.speech_paths),
        }
        if not given[self.kind] or sum(given.values()) != 1:
            raise DataError(f"a {self.kind!r} target needs exactly its own field (got {given})")
        if isinstance(self.blend, Mapping):
            object.__setattr__(self, "blend", tuple(dict(self.blend).items()))

    @classmethod
    def of(cls, value) -> Target:
        """A Target, an emotion name or blend text (:func:`parse_target_text`), a ``{emotion: weight}``
        mapping, or features ``[k, D_a]`` / ``[D_a]`` -> Target."""
        if isinstance(value, Target):
            return value
        if isinstance(value, str):
            return parse_target_text(value)
        if isinstance(value, Mapping):
            return cls("blend", blend=tuple(parse_blend(value).items()))
        if value is None:
            raise DataError("no target given: an emotion name, a blend, speech features or speech clips")
        try:
            arr = np.asarray(value, np.float32)
        except (TypeError, ValueError):
            raise DataError(f"target of type {type(value).__name__}: not a name, blend or features") from None
        return cls("features", features=arr[None] if arr.ndim == 1 else arr)

    @classmethod
    def speech(cls, paths: Iterable[str | Path]) -> Target:
        """Speech clips; a folder stands for its audio and ``.npy`` files (sorted)."""
        from cmet.audio.io import speech_files

        return cls("speech", speech_paths=tuple(speech_files(paths)))

    @property
    def weights(self) -> dict[str, float]:
        return dict(self.blend)

    def describe(self) -> str:
        if self.kind == "name":
            return str(self.emotion)
        if self.kind == "blend":
            return "+".join(f"{k}:{v:.2f}" for k, v in self.blend)
        if self.kind == "speech":
            return f"speech x{len(self.speech_paths)}"
        return f"features {tuple(self.features.shape)}"


def _weight(name: str, w, what: str) -> float:
    if isinstance(w, bool):
        raise DataError(f"{what}: weight of {name!r} is {w!r}, not a number")
    try:
        x = float(w)
    except (TypeError, ValueError):
        raise DataError(f"{what}: weight of {name!r} is {w!r}, not a number") from None
    if not math.isfinite(x) or not 0.0 <= x <= MAX_WEIGHT:
        raise DataError(
            f"{what}: weight of {name!r} must be a finite number in [0, {MAX_WEIGHT:g}], got {w!r}"
        )
    return x


def _pairs(text: str, what: str) -> list[tuple[str, object]]:
    """``happy``, ``happy=0.7,sad=0.3``, ``happy:0.7,sad:0.3`` or a JSON object -> [(name, weight)]."""
    text = text.strip()
    if text.startswith("{"):
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as e:
            raise DataError(f"{what}: not valid JSON ({e.msg})") from None
        if not isinstance(obj, dict):
            raise DataError(f"{what}: expected a JSON object {{emotion: weight}}")
        return list(obj.items())
    parts = [p.strip() for p in text.split(",")]
    if len(parts) == 1 and parts[0] and not any(c in parts[0] for c in "=:"):
        return [(parts[0], 1.0)]
    out = []
    for part in parts:
        sep = "=" if "=" in part else ":"
        name, found, w = part.partition(sep)
        if not found or not name.strip():
            raise DataError(f"{what}: {part!r} is not emotion=weight (or emotion:weight)")
        out.append((name.strip(), w.strip()))
    return out


def parse_blend(
    text_or_mapping: str | Mapping[str, object], known: Sequence[str] | None = None
) -> dict[str, float]:
    """A blend in any accepted spelling -> ``{emotion: weight}`` with weights summing to 1.

    Spellings: ``happy``, ``happy=0.7,sad=0.3``, ``happy:0.7,sad:0.3``, the JSON string
    ``{"happy": 0.7, "sad": 0.3}`` and a mapping. Bad forms and weights (not a number, NaN, inf,
    negative, over 100, all zero, an emotion twice) -> DataError naming it; an emotion not in
    ``known`` (when given) -> UnknownEmotionError.
    """
    what = f"blend {text_or_mapping!r}"
    if isinstance(text_or_mapping, Mapping):
        items = list(text_or_mapping.items())
    elif isinstance(text_or_mapping, str):
        items = _pairs(text_or_mapping, what)
    else:
        raise DataError(f"{what}: expected text or a {{emotion: weight}} mapping")
    if not items:
        raise DataError(f"{what} is empty")
    weights: dict[str, float] = {}
    for name, w in items:
        name = str(name).strip()
        if not name:
            raise DataError(f"{what}: an empty emotion name")
        if name in weights:
            raise DataError(f"{what}: {name!r} is given twice")
        if known is not None and name not in known:
            raise UnknownEmotionError(f"blend: unknown emotion {name!r}; this model knows {sorted(known)}")
        weights[name] = _weight(name, w, what)
    total = sum(weights.values())
    if total <= 0:
        raise DataError(f"{what}: all weights are 0 (at least one must be > 0)")
    return {k: v / total for k, v in weights.items()}


def parse_target_text(text: str) -> Target:
    """``happy`` -> a name target; any blend spelling of :func:`parse_blend` -> a blend target."""
    text = (text or "").strip()
    if not text:
        raise DataError("empty target emotion")
    pairs = _pairs(text, f"blend {text!r}")
    if len(pairs) == 1 and pairs[0] == (text, 1.0):
        return Target("name", emotion=text)
    return Target("blend", blend=tuple(parse_blend(text).items()))


def load_feature_folder(
    folder: str | Path, d_speech: int | None, what: str = "emotion features"
) -> np.ndarray:
    """A folder of ``.npy`` utterance features (each ``[D_a]`` or ``[1, D_a]``) -> ``[k, D_a]``;
    ``d_speech`` None: the first file's width (every file must have it)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{what}: {folder} is not a folder")
    files = sorted(folder.glob("*.npy"))
    if not files:
        raise DataError(f"{what}: no .npy files in {folder}")
    rows = []
    for f in files:
        try:
            a = np.asarray(np.load(f, allow_pickle=False), np.float32)
        except (OSError, ValueError, EOFError) as e:
            raise DataError(f"{what}: cannot read {f} ({e})") from None
        a = a.reshape(-1) if a.ndim == 2 and a.shape[0] == 1 else a
        d_speech = d_speech or (a.shape[0] if a.ndim == 1 else None)
        if a.ndim != 1 or a.shape[0] != d_speech:
            raise DataError(
                f"{what}: {f.name} has shape {tuple(a.shape)}; this model expects [{d_speech}] "
                f"(or [1, {d_speech}]) features"
            )
        if not np.isfinite(a).all():
            raise DataError(f"{what}: {f.name} contains NaN/inf")
        rows.append(a)
    return np.stack(rows)


def load_feature_path(path: str | Path, d_speech: int | None, what: str = "emotion features") -> np.ndarray:
    """A ``.npy`` file (``[D_a]``, ``[k, D_a]``) or a folder of them (:func:`load_feature_folder`) ->
    ``[k, D_a]`` (width ``d_speech`` when given)."""
    path = Path(path)
    if path.is_dir():
        return load_feature_folder(path, d_speech, what)
    try:
        arr = np.asarray(np.load(path, allow_pickle=False), np.float32)
    except (OSError, ValueError, EOFError) as e:
        raise DataError(f"{what}: cannot read {path} as .npy ({e})") from None
    width = d_speech or (arr.shape[-1] if arr.ndim in (1, 2) else -1)
    return check_features(arr, width, f"{what} {path.name}")


def check_features(arr: np.ndarray, d_speech: int, what: str = "target features") -> np.ndarray:
    """``[k, D_a]`` finite float32 of the model's width, else DataError."""
    arr = np.asarray(arr, np.float32)
    arr = arr[None] if arr.ndim == 1 else arr
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] != d_speech:
        raise DataError(f"{what} have shape {tuple(arr.shape)}; this model expects [k, {d_speech}]")
    if not np.isfinite(arr).all():
        raise DataError(f"{what} contain NaN/inf")
    return arr


def resolve_target(target, bundle, encoder=None) -> tuple[object, str]:
    """Target (or anything :meth:`Target.of` takes) -> (what ``bundle.predict_offsets`` takes: an
    emotion name, a ``{emotion: weight}`` blend or features ``[k, D_a]``; a description).

    Speech clips are encoded with ``encoder`` or, by default, the bundle's own
    (:func:`cmet.audio.encoder_for_bundle`). Unknown emotions -> UnknownEmotionError; features or
    encoder output of another width -> DataError / ModelError."""
    t = Target.of(target)
    known = list(bundle.banks)
    if t.kind == "name":
        if t.emotion not in bundle.banks:
            raise UnknownEmotionError(f"unknown emotion {t.emotion!r}; this model knows {sorted(known)}")
        return t.emotion, t.describe()
    if t.kind == "blend":
        weights = parse_blend(t.weights, known=known)
        # one emotion at weight 1 is that emotion by name (the same vector, bit for bit)
        return (next(iter(weights)) if len(weights) == 1 else weights), t.describe()
    if t.kind == "features":
        return check_features(t.features, bundle.d_speech), t.describe()
    if encoder is None:
        from cmet.audio import encoder_for_bundle

        encoder = encoder_for_bundle(bundle)
    feats = np.asarray(encoder.encode_files(list(t.speech_paths)), np.float32)
    if feats.ndim != 2 or feats.shape[1] != bundle.d_speech:
        raise ModelError(
            f"the speech encoder {encoder.name!r} gives features {tuple(feats.shape)}; this model expects "
            f"[k, {bundle.d_speech}] (pass .npy features of that width instead)"
        )
    return feats, t.describe()
