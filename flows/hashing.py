"""Content hashes for cache keys: config sections, library source code, feature folders."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def hash_obj(obj: object, n: int = 16) -> str:
    """sha256 of a JSON dump (sorted keys) of plain data (dicts, lists, numbers, strings)."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:n]


def hash_cfg(cfg, *sections: str) -> str:
    """Hash of the resolved config sections (e.g. ``hash_cfg(cfg, "data", "audio")``)."""
    from omegaconf import OmegaConf

    c = OmegaConf.to_container(cfg, resolve=True)
    return hash_obj({s: c.get(s) for s in sections})


def hash_code(*packages: str) -> str:
    """Hash of the Python sources under the given project folders (``cmet/data``, ``cmet/model``...):
    a cache key changes when the code that produced a result changes."""
    h = hashlib.sha256()
    for pkg in packages:
        base = ROOT / pkg
        files = [base] if base.is_file() else sorted(base.rglob("*.py")) if base.is_dir() else []
        for f in files:
            h.update(str(f.relative_to(ROOT)).encode())
            h.update(f.read_bytes())
    return h.hexdigest()[:16]


def hash_dir(folder: str | Path) -> str:
    """Hash of every file (name + bytes) under a folder, e.g. a model bundle."""
    h = hashlib.sha256()
    folder = Path(folder)
    for f in sorted(p for p in folder.rglob("*") if p.is_file()):
        h.update(str(f.relative_to(folder)).encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:16]
