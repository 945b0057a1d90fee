"""The one timeline parser: the string form, the YAML/JSON file form and mappings -> :class:`cmet.timeline.Timeline`.

**String form** (``cmet edit --timeline``; :func:`parse_timeline`)::

    timeline := entry ( "," entry )*
    entry    := START ":" TARGET [ "@" INTENSITY ] [ "~" TRANSITION ]
    START    := seconds from the video's start (``2.5`` or ``2.5s``)
    TARGET   := emotion                      happy, neutral, charismatic
              | emotion=w ( "+" emotion=w )*  a blend: happy=0.7+surprised=0.3 (``:`` for ``=`` too)
              | path                          a .npy vector file, a speech clip or a folder of them

``,`` separates entries and the first ``:`` ends START, so a blend inside an entry joins its terms
with ``+`` (``happy=0.7,sad=0.3`` would be two entries). INTENSITY multiplies the edit's own
intensity (default 1); TRANSITION is the length in seconds of the cross-fade *into* the entry
(default :data:`DEFAULT_TRANSITION_S`; ``~0`` is a cut). Example: ``0:neutral, 2.0:happy@0.8,
4.5:sad~1``.

**File / mapping form** (a ``.yaml``/``.yml``/``.json`` file, JSON text, or a mapping): a list of
entries, or ``{"segments": [...], "transition": s, "intensity": x}`` (defaults for the entries).
An entry is the string form of one entry, or a mapping with ``start`` and exactly one of
``emotion``, ``blend`` (mapping or text), ``target`` (any TARGET text; ``,`` allowed in a blend
there), ``features`` (a ``.npy`` file or folder) or ``speech`` (clips or a folder), and optional
``intensity``, ``transition``. Relative paths in a file are relative to the file's folder.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from cmet.errors import CmetError, DataError
from cmet.target import Target, parse_target_text
from cmet.timeline import DEFAULT_TRANSITION_S, Segment, Timeline, entry_label

#: suffixes that make a TARGET a path (besides containing a / or \\ or naming an existing file)
PATH_SUFFIXES = (".npy", ".wav", ".flac", ".mp3", ".ogg", ".m4a", ".mp4")
_ENTRY_KEYS = {"start", "emotion", "blend", "target", "features", "speech", "intensity", "transition"}


def parse_timeline(
    value,
    *,
    transition_s: float = DEFAULT_TRANSITION_S,
    allow_paths: bool = True,
    base_dir: str | Path | None = None,
    d_speech: int | None = None,
) -> Timeline:
    """The one timeline parser: a :class:`Timeline`, the string form, a ``.yaml``/``.yml``/``.json``
    file (a path, or text naming an existing file), JSON text, a list of entries or a mapping (see the
    module docstring) -> Timeline. ``transition_s``: the default transition of entries that give none;
    ``allow_paths=False`` refuses file targets (the service: a request never names server files);
    ``d_speech``: the model's speech width, checked for ``.npy`` targets when given. Bad input ->
    DataError naming the entry."""
    if isinstance(value, Timeline):
        return value
    if isinstance(value, Path) or (isinstance(value, str) and _looks_like_file(value)):
        if not allow_paths:
            raise DataError("timeline: a file name is not accepted here; send the timeline itself")
        return _parse_file(Path(value), transition_s, d_speech)
    ctx = _Ctx(transition_s, 1.0, allow_paths, Path(base_dir) if base_dir else None, d_speech)
    if isinstance(value, str):
        text = value.strip()
        if not text:
            raise DataError("timeline: empty")
        if text[0] in "[{":
            try:
                value = json.loads(text)
            except json.JSONDecodeError as e:
                raise DataError(f"timeline: not valid JSON ({e.msg} at character {e.pos})") from None
        else:
            return Timeline.fit(_parse_entry(i, p.strip(), ctx) for i, p in enumerate(text.split(","), 1))
    return _parse_obj(value, ctx)


def _looks_like_file(text: str) -> bool:
    t = text.strip()
    if t.lower().endswith((".yaml", ".yml", ".json")) and "," not in t:
        return True
    return "\n" not in t and len(t) < 4096 and Path(t).is_file()


def _parse_file(path: Path, transition_s: float, d_speech: int | None) -> Timeline:
    if not path.is_file():
        raise DataError(f"timeline file {path} does not exist")
    text = path.read_text(errors="replace")
    try:
        if path.suffix.lower() == ".json":
            obj = json.loads(text)
        else:
            import yaml

            obj = yaml.safe_load(text)
    except (json.JSONDecodeError, ValueError) as e:
        raise DataError(f"timeline file {path.name}: not valid JSON ({e})") from None
    except Exception as e:  # yaml.YAMLError and its subclasses
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise DataError(f"timeline file {path.name}: not valid YAML ({first})") from None
    if isinstance(obj, str):
        return parse_timeline(obj, transition_s=transition_s, base_dir=path.parent, d_speech=d_speech)
    return _parse_obj(obj, _Ctx(transition_s, 1.0, True, path.parent, d_speech))


@dataclass(frozen=True)
class _Ctx:
    transition_s: float
    intensity: float
    allow_paths: bool
    base_dir: Path | None
    d_speech: int | None


def _parse_obj(obj, ctx: _Ctx) -> Timeline:
    if isinstance(obj, Mapping):
        unknown = set(obj) - {"segments", "transition", "intensity"}
        if unknown or "segments" not in obj:
            raise DataError(
                "timeline: a mapping needs 'segments' (a list of entries) and may give 'transition' and "
                f"'intensity' defaults; got keys {sorted(map(str, obj))}"
            )
        ctx = replace(
            ctx,
            transition_s=_number(obj.get("transition", ctx.transition_s), "timeline: transition"),
            intensity=_number(obj.get("intensity", ctx.intensity), "timeline: intensity"),
        )
        obj = obj["segments"]
    if not isinstance(obj, Sequence) or isinstance(obj, str | bytes):
        raise DataError(f"timeline: expected a list of entries, got {type(obj).__name__}")
    return Timeline.fit(_parse_entry(i, e, ctx) for i, e in enumerate(obj, 1))


_SUFFIX = re.compile(r"^(?P<target>.*?)(?:@(?P<intensity>[^@~/\\]*))?(?:~(?P<transition>[^@~/\\]*))?$", re.S)


def _parse_entry(i: int, entry, ctx: _Ctx) -> Segment:
    if isinstance(entry, Mapping):
        return _parse_mapping_entry(i, entry, ctx)
    if not isinstance(entry, str):
        raise DataError(
            f"{entry_label(i, '')}: expected 'START:TARGET' or a mapping, got {type(entry).__name__}"
        )
    text = entry.strip()
    start, found, rest = text.partition(":")
    if not found or not rest.strip():
        hint = " (inside an entry, join a blend's terms with '+': happy=0.7+sad=0.3)" if "=" in text else ""
        raise DataError(f"{entry_label(i, text)} is not START:TARGET[@INTENSITY][~TRANSITION]{hint}")
    m = _SUFFIX.match(rest.strip())
    what = f"{entry_label(i, text)}"
    target = _target_text(m["target"].strip(), what, ctx)
    return Segment(
        _seconds(start, f"{what}: start"),
        target,
        ctx.intensity * (1.0 if m["intensity"] is None else _number(m["intensity"], f"{what}: intensity")),
        ctx.transition_s if m["transition"] is None else _seconds(m["transition"], f"{what}: transition"),
        text,
        m["transition"] is None,
    )


def _parse_mapping_entry(i: int, e: Mapping, ctx: _Ctx) -> Segment:
    text = json.dumps(e, default=str, separators=(",", ":"))
    what = entry_label(i, text)
    unknown = set(map(str, e)) - _ENTRY_KEYS
    if unknown:
        raise DataError(f"{what}: unknown keys {sorted(unknown)}; an entry takes {sorted(_ENTRY_KEYS)}")
    if "start" not in e:
        raise DataError(f"{what}: no 'start' (seconds)")
    kinds = [
        k for k in ("emotion", "blend", "target", "features", "speech") if e.get(k) not in (None, "", [], {})
    ]
    if len(kinds) != 1:
        raise DataError(
            f"{what}: give exactly one of emotion, blend, target, features, speech (got {kinds or 'none'})"
        )
    kind, val = kinds[0], e[kinds[0]]
    try:
        if kind == "blend":
            target = Target.of(val if isinstance(val, Mapping) else str(val).replace("+", ","))
        elif kind in ("features", "speech"):
            target = _path_target(str(val), what, ctx, kind)
        elif kind == "emotion":
            target = Target("name", emotion=str(val).strip())
        else:
            target = _target_text(str(val).strip(), what, ctx)
    except CmetError as err:
        msg = str(err)
        raise type(err)(msg if msg.startswith(what) else f"{what}: {msg}") from None
    return Segment(
        _seconds(e["start"], f"{what}: start"),
        target,
        ctx.intensity * _number(e.get("intensity", 1.0), f"{what}: intensity"),
        _seconds(e.get("transition", ctx.transition_s), f"{what}: transition"),
        text,
        "transition" not in e,
    )


def _target_text(text: str, what: str, ctx: _Ctx) -> Target:
    if not text:
        raise DataError(f"{what}: no target after START:")
    if any(c in text for c in "/\\") or text.lower().endswith(PATH_SUFFIXES) or _exists(text, ctx):
        return _path_target(text, what, ctx)
    try:
        return parse_target_text(text.replace("+", ","))
    except CmetError as err:
        raise type(err)(f"{what}: {err}") from None


def _exists(text: str, ctx: _Ctx) -> bool:
    p = Path(text).expanduser()
    return (p if p.is_absolute() or ctx.base_dir is None else ctx.base_dir / p).exists()


def _path_target(text: str, what: str, ctx: _Ctx, kind: str | None = None) -> Target:
    """A TARGET naming files: a ``.npy`` file -> features; an audio file or a folder of clips -> speech;
    a folder of ``.npy`` only -> features ([k, D_a])."""
    from cmet.audio.io import speech_files
    from cmet.target import load_feature_path

    if not ctx.allow_paths:
        raise DataError(
            f"{what}: file targets are not accepted here (send names or blends, or target_features / timeline_speech)"
        )
    p = Path(text).expanduser()
    p = p if p.is_absolute() or ctx.base_dir is None else ctx.base_dir / p
    if not p.exists():
        raise DataError(
            f"{what}: {p} does not exist (a target is an emotion, a blend, or an existing file/folder)"
        )
    files = speech_files([p])
    if all(f.suffix.lower() == ".npy" for f in files) and kind != "speech":
        return Target("features", features=load_feature_path(p, ctx.d_speech, f"{what}: features"))
    if kind == "features":
        raise DataError(f"{what}: features must be .npy vectors; {p.name} holds audio (use 'speech')")
    return Target("speech", speech_paths=tuple(files))


def _number(x, what: str, unit: str = "") -> float:
    if isinstance(x, bool):
        raise DataError(f"{what} {x!r} is not a number{unit}")
    try:
        v = float(x)
    except (TypeError, ValueError):
        raise DataError(f"{what} {x!r} is not a number{unit}") from None
    if not math.isfinite(v):
        raise DataError(f"{what} {x!r} is not a finite number{unit}")
    if v < 0:
        raise DataError(f"{what} {v:g}{unit and ' s'} is negative")
    return v


def _seconds(x, what: str) -> float:
    text = x.strip().lower() if isinstance(x, str) else None
    return _number(text[:-1] if text and text.endswith("s") else x, what, " of seconds")
