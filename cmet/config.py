"""Config composition with Hydra's compose API, for the entry points: the CLI commands, flows, serving,
bench and tests compose a config and pass it (or one of its groups) down; the library never composes.

The typed groups are checked against their schemas in :mod:`cmet.conf` while composing.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

#: the project's configs/ folder (a sibling of the cmet package)
CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"


def compose(
    overrides: Sequence[str] = (), config_name: str = "config", config_dir: str | Path | None = None
) -> DictConfig:
    """Compose ``configs/<config_name>.yaml`` with Hydra overrides, e.g. ``["model=cmet_paper"]``.

    Uses a fresh global Hydra instance each call, so it is safe to call repeatedly (tests, flows).
    A bad override (unknown key or option, a value of the wrong type) raises one
    :class:`~cmet.errors.ConfigError` naming it.
    """
    from hydra import compose as _compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from cmet.conf import register_configs
    from cmet.errors import ConfigError

    register_configs()
    cdir = Path(config_dir or CONFIG_DIR).resolve()
    if GlobalHydra.instance().is_initialized():
        GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(cdir), version_base="1.3"):
            cfg = _compose(config_name=config_name, overrides=list(overrides))
    except (HydraException, OmegaConfBaseException) as e:
        cause = e.__cause__ if isinstance(e.__cause__, OmegaConfBaseException) else None
        detail = str(e).split("\nConfig search path")[0].strip() + (
            f" ({str(cause).splitlines()[0]})" if cause else ""
        )
        raise ConfigError(f"config {config_name!r} with overrides {list(overrides)}: {detail}") from e
    return cfg


def flatten(cfg: DictConfig, sep: str = ".") -> dict[str, object]:
    """Flatten a config into ``{"train.lr": 3e-4, ...}`` (for MLflow params)."""
    out: dict[str, object] = {}

    def walk(node: object, prefix: str) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, f"{prefix}{sep}{k}" if prefix else str(k))
        else:
            out[prefix] = node

    walk(OmegaConf.to_container(cfg, resolve=True), "")
    return out
