"""Content hashes of *inputs*: config sections, library source code, files and folders.

Cache and lineage keys are built from these, never from float results: the same inputs give the same
key on any CPU, while a float computed from them may differ in its last bits from one CPU to another
(SIMD width, FMA, library kernels), which would make a cache silently miss there. Hash the files that
went in and the code and config that turned them into a result. The bytes of a *stored* artefact (a
model bundle, a saved feature folder) are an input of whatever reads them and may be hashed too.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path

#: the project root; source paths are hashed relative to it (a clone elsewhere keys the same)
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
    """Hash of the Python sources under the given project folders (``cmet/data``, ``cmet/model``...) or
    of the named files: a cache key changes when the code that produced a result changes."""
    h = hashlib.sha256()
    for pkg in packages:
        base = ROOT / pkg
        files = [base] if base.is_file() else sorted(base.rglob("*.py")) if base.is_dir() else []
        for f in files:
            h.update(str(f.relative_to(ROOT)).encode())
            h.update(f.read_bytes())
    return h.hexdigest()[:16]


def hash_files(files: Iterable[tuple[str, str | Path]]) -> str:
    """Hash of ``(name, path)`` pairs: each name and its file's bytes, in the order given (names, not
    absolute paths, so that the same files elsewhere hash the same)."""
    h = hashlib.sha256()
    for name, path in files:
        h.update(str(name).encode())
        with open(path, "rb") as f:
            while b := f.read(1 << 20):
                h.update(b)
    return h.hexdigest()[:16]


def hash_dir(folder: str | Path) -> str:
    """Hash of every file (name + bytes) under a folder, e.g. a model bundle."""
    folder = Path(folder)
    return hash_files(
        (str(f.relative_to(folder)), f) for f in sorted(p for p in folder.rglob("*") if p.is_file())
    )
