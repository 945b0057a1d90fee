"""Speech-feature cache keyed by content: sha256 of the audio file's bytes + the encoder's config key.

``<cache_dir>/speech/<encoder key>/<audio hash>.npy`` holds one clip's embedding [D]. Re-encoding
the same audio with the same encoder is free; renaming or moving files does not invalidate it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np


def file_hash(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while b := f.read(chunk):
            h.update(b)
    return h.hexdigest()[:24]


def encode_cached(
    encoder, paths: Sequence[str | Path], cache_dir: str | Path | None
) -> tuple[np.ndarray, dict]:
    """Embeddings [N, D] of audio files, cached; the missing ones are encoded in one batch pass.

    Returns (array, {"hits": n, "encoded": m, "dir": folder}).
    """
    paths = [Path(p) for p in paths]
    if cache_dir is None:
        return encoder.encode_files(paths), {"hits": 0, "encoded": len(paths), "dir": None}
    folder = Path(cache_dir) / "speech" / f"{encoder.name}-{encoder.config_key()}"
    folder.mkdir(parents=True, exist_ok=True)
    keys = [file_hash(p) if p.is_file() else None for p in paths]
    out: list[np.ndarray | None] = [None] * len(paths)
    todo = []
    for i, k in enumerate(keys):
        f = folder / f"{k}.npy"
        if k is not None and f.is_file():
            out[i] = np.load(f)
        else:
            todo.append(i)
    if todo:
        new = encoder.encode_files([paths[i] for i in todo])
        for j, i in enumerate(todo):
            out[i] = new[j]
            if keys[i] is not None:
                tmp = folder / f".{keys[i]}.tmp.npy"
                np.save(tmp, new[j])
                tmp.replace(folder / f"{keys[i]}.npy")
    arr = np.stack(out).astype(np.float32) if out else np.zeros((0, encoder.dim), np.float32)
    return arr, {"hits": len(paths) - len(todo), "encoded": len(todo), "dir": str(folder)}
