"""Data sources. Every source builds a :class:`~cmet.data.features.FeatureSet`.

``build_feature_set(cfg)`` dispatches on ``cfg.data.source`` through :data:`SOURCES`, a dict of lazy
import strings ``"module:function"``; each function is ``build(cfg) -> FeatureSet``.
"""

from __future__ import annotations

import importlib
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


def build_feature_set(cfg) -> FeatureSet:
    """Build the FeatureSet that ``cfg.data.source`` names (``simulator``, ``generated``, ``release_au``).

    Raises :class:`~cmet.errors.ConfigError` for an unknown source.
    """
    source = cfg.data.source
    if source not in SOURCES:
        raise ConfigError(f"unknown data source {source!r} (cfg.data.source); known: {sorted(SOURCES)}")
    mod_name, fn_name = SOURCES[source].split(":")
    return getattr(importlib.import_module(mod_name), fn_name)(cfg)
