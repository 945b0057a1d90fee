"""Provenance of every edited video (CLI, service, pipeline sample): metadata tags in the mp4 and an optional visible mark.

:func:`stamp` rewrites an edited mp4 in place with ffmpeg (``-c copy`` unless a visible mark is asked
for, then the video is re-encoded with the mark drawn in a corner). The tags (``ffprobe`` shows them
under ``format.tags``): ``comment`` (a sentence saying the face was edited), ``cmet_edited=true``,
``cmet_tool`` (name and version), ``cmet_model`` (registry name, version, alias), ``cmet_target``,
``cmet_intensity``, ``cmet_date`` (UTC, ISO 8601); an edit along a timeline also ``cmet_timeline`` (the
segments as ``START:TARGET@INTENSITY~TRANSITION, ...``).
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from cmet.errors import VideoError

TOOL = "cmet-ops"
#: longest tag value written (a speech track's timeline of many windows is cut there, with "...")
MAX_TAG_CHARS = 2000


def tags(
    model: dict, target: str, intensity: float, version: str, timeline: str | None = None
) -> dict[str, str]:
    """The provenance tags of one edit; ``timeline``: the edit's timeline (:meth:`cmet.timeline.Timeline.describe`),
    written as ``cmet_timeline`` (``cmet_target`` then says ``timeline``)."""
    model_id = f"{model.get('model', 'cmet')} v{model.get('version', '?')}"
    if model.get("alias"):
        model_id += f" ({model['alias']})"
    toward = f"the timeline {_cap(timeline)}" if timeline else f"'{target}'"
    out = {
        "comment": f"Facial expression synthetically edited by {TOOL} (C-MET) toward {toward}.",
        "cmet_edited": "true",
        "cmet_tool": f"{TOOL} {version}",
        "cmet_model": model_id,
        "cmet_target": "timeline" if timeline else target,
        "cmet_intensity": f"{float(intensity):g}",
        "cmet_date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    if timeline:
        out["cmet_timeline"] = _cap(timeline)
    return out


def _cap(text: str, n: int = MAX_TAG_CHARS) -> str:
    return text if len(text) <= n else text[: n - 3] + "..."


def stamp(path: Path, meta: dict[str, str], mark: str | None = None) -> Path:
    """Write ``meta`` into the mp4 at ``path`` (in place); ``mark``: text drawn in the lower-left
    corner of every frame. Returns ``path``."""
    from cmet.media import ffmpeg_exe

    path = Path(path)
    tmp = path.with_name(path.stem + ".stamped.mp4")
    cmd = [ffmpeg_exe(), "-y", "-nostdin", "-loglevel", "error", "-i", str(path), "-map", "0"]
    if mark:
        text = mark.replace("\\", "").replace("'", "").replace(":", " ")[:40]
        draw = (
            f"drawtext=text='{text}':x=8:y=h-th-8:fontsize=max(12\\,h/24):fontcolor=white@0.85:"
            "box=1:boxcolor=black@0.45:boxborderw=4"
        )
        cmd += ["-vf", draw, "-c:v", "libx264", "-pix_fmt", "yuv420p", "-crf", "18", "-c:a", "copy"]
    else:
        cmd += ["-c", "copy"]
    for k, v in meta.items():
        cmd += ["-metadata", f"{k}={v}"]
    cmd += ["-movflags", "+faststart+use_metadata_tags", str(tmp)]
    r = subprocess.run(cmd, capture_output=True)
    if r.returncode != 0 or not tmp.is_file():
        tmp.unlink(missing_ok=True)
        raise VideoError(f"could not write the provenance tags ({r.stderr.decode(errors='replace')[-200:]})")
    tmp.replace(path)
    return path


def read_tags(path: Path) -> dict[str, str]:
    """The container tags of an mp4 as ffmpeg reports them (what ``ffprobe -show_format`` lists)."""
    from cmet.media import ffmpeg_exe

    text = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(path)], capture_output=True
    ).stderr.decode(errors="replace")
    out: dict[str, str] = {}
    in_meta = False
    for line in text.splitlines():
        if line.startswith("Input #"):
            continue
        if line.strip() == "Metadata:" and line.startswith("  ") and not line.startswith("    "):
            in_meta = True
            continue
        if in_meta:
            if not line.startswith("    ") or line.strip().startswith("Duration:"):
                break
            key, _, value = line.strip().partition(":")
            out[key.strip()] = value.strip()
    return out
