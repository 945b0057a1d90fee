"""Data sources. Every source builds a :class:`~cmet.data.features.FeatureSet`.

``build_feature_set(cfg)`` dispatches on ``cfg.data.source`` through :data:`SOURCES`, a dict of lazy
import strings ``"module:function"``; each function is ``build(cfg) -> FeatureSet``.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING

from cmet.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    from cmet.data.features import FeatureSet

#: cfg.data.source -> "module:function" (imported only when chosen)
SOURCES: dict[str, str] = {
    "simulator": "cmet.data.simulator:build",
    "generated": "cmet.data.generated:build",
    "release_au": "cmet.data.release_au:build",
}
#: cfg.data.source -> "module:function" naming the files the source reads, ``fn(cfg) -> [(name, path)]``
#: (a source not listed reads none: it is made from its config alone)
INPUTS: dict[str, str] = {"release_au": "cmet.data.release_au:input_files"}
#: data settings that say where files lie, not what they are (the files read are hashed by content)
LOCATIONS = ("release_dir", "out_dir")
#: the library code that turns a source's config and files into its FeatureSet
DATA_CODE = ("cmet/data", "cmet/audio", "cmet/face/facs.py", "cmet/face/tracks.py")


def _source(cfg, table: dict[str, str]):
    source = cfg.data.source
    if source not in SOURCES:
        raise ConfigError(f"unknown data source {source!r} (cfg.data.source); known: {sorted(SOURCES)}")
    if source not in table:
        return None
    mod_name, fn_name = table[source].split(":")
    return getattr(importlib.import_module(mod_name), fn_name)


def input_files(cfg) -> list[tuple[str, Path]]:
    """The files ``build_feature_set(cfg)`` reads, as ``(name, path)`` with names that do not depend on
    where the folder lies (e.g. ``release/audios/MEAD/happy/W009_level_3_001.wav``)."""
    fn = _source(cfg, INPUTS)
    return [] if fn is None else list(fn(cfg))


def input_hash(cfg) -> str:
    """The key of the FeatureSet ``cfg`` builds, from what goes in: the data / audio / seed config (less
    :data:`LOCATIONS`: the same files elsewhere key the same), the source's files (:func:`input_files`,
    by their bytes) and the code that builds it (:data:`DATA_CODE`).

    Never from the arrays that come out: those are floats, and another CPU computes some of them
    (speech envelopes, resampling) differently in the last bits; a key over them would make the same
    inputs miss every cache there. Written into the FeatureSet's ``meta["input_hash"]``."""
    from omegaconf import OmegaConf

    from cmet import hashing

    c = OmegaConf.to_container(cfg, resolve=True)
    data = {k: v for k, v in c["data"].items() if k not in LOCATIONS}
    return hashing.hash_obj(
        [
            hashing.hash_obj({"data": data, "audio": c.get("audio"), "seed": c.get("seed")}),
            hashing.hash_code(*DATA_CODE),
            hashing.hash_files(input_files(cfg)),
        ]
    )


def build_feature_set(cfg) -> FeatureSet:
    """Build the FeatureSet that ``cfg.data.source`` names (``simulator``, ``generated``, ``release_au``).

    Its ``meta["input_hash"]`` is :func:`input_hash` (the key caches and run folders use). Raises
    :class:`~cmet.errors.ConfigError` for an unknown source.
    """
    fs = _source(cfg, SOURCES)(cfg)
    fs.meta["input_hash"] = input_hash(cfg)
    return fs
