"""How much a bento's Python requirements install: the transitive closure of a requirement list over
the installed distributions of this environment, and the bytes their files take (the RECORD of each
distribution). It is the size of the image's Python layer without building the image (no docker here).

``cmet bento footprint`` prints it for the project's base dependencies and for the ``serving`` extra.
"""

from __future__ import annotations

import importlib.metadata as md
import tomllib
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent


def requirement_lists() -> dict[str, list[str]]:
    """{"base": project.dependencies, "serving": the serving extra} from pyproject.toml."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return {
        "base": list(project["dependencies"]),
        "serving": list(project["optional-dependencies"]["serving"]),
    }


def closure(requirements: list[str]) -> dict[str, md.Distribution]:
    """Every installed distribution the requirements pull in (markers evaluated for this Python,
    extras followed) -> {canonical name: distribution}. A requirement not installed here is skipped."""
    env = default_environment()
    seen: dict[str, md.Distribution] = {}
    todo = [(Requirement(r), "") for r in requirements]
    while todo:
        req, extra = todo.pop()
        if req.marker is not None and not req.marker.evaluate({**env, "extra": extra}):
            continue
        name = canonicalize_name(req.name)
        try:
            dist = md.distribution(req.name)
        except md.PackageNotFoundError:
            continue
        new = name not in seen
        seen[name] = dist
        for extra_name in req.extras | ({""} if new else set()):
            for sub in dist.requires or []:
                todo.append((Requirement(sub), extra_name))
    return seen


def installed_bytes(dists: dict[str, md.Distribution]) -> int:
    """The bytes of every file the distributions installed (their RECORD)."""
    total = 0
    for dist in dists.values():
        for f in dist.files or []:
            p = Path(dist.locate_file(f))
            if p.is_file():
                total += p.stat().st_size
    return total


def footprint() -> dict:
    """{list: {"requirements": n, "distributions": n, "installed_mb": x, "largest": [(name, mb)...]}}."""
    out = {}
    for key, reqs in requirement_lists().items():
        dists = closure(reqs)
        sizes = sorted(((n, installed_bytes({n: d}) / 2**20) for n, d in dists.items()), key=lambda t: -t[1])
        out[key] = {
            "requirements": len(reqs),
            "distributions": len(dists),
            "installed_mb": round(sum(s for _, s in sizes), 1),
            "largest": [(n, round(s, 1)) for n, s in sizes[:8]],
        }
    return out
