"""The serving config (configs/serving/default.yaml), readable without Hydra's global state.

The service module needs a few values when its class is decorated (traffic, resources), so it reads the
YAML file directly; ``CMET_SERVING_PROFILE`` (cpu | gpu) and ``CMET_SERVING_CONFIG`` (another YAML
file) override it. The rest of the code receives the composed ``cfg.serving``.
"""

from __future__ import annotations

import os
from pathlib import Path

CONFIG_FILE = Path(__file__).resolve().parent.parent / "configs" / "serving" / "default.yaml"


def serving_cfg():
    """-> the ``serving`` config node (OmegaConf DictConfig)."""
    from omegaconf import OmegaConf

    cfg = OmegaConf.load(os.environ.get("CMET_SERVING_CONFIG", CONFIG_FILE))
    if os.environ.get("CMET_SERVING_PROFILE"):
        cfg.profile = os.environ["CMET_SERVING_PROFILE"]
    if cfg.profile not in ("cpu", "gpu"):
        from cmet.errors import ConfigError

        raise ConfigError(f"serving.profile={cfg.profile!r}; expected cpu or gpu")
    return cfg


def service_config(cfg) -> dict:
    """The ``@bentoml.service(**config)`` keywords of a serving config."""
    traffic = {
        "timeout": int(cfg.traffic.timeout),
        "max_concurrency": int(cfg.traffic.max_concurrency),
        # a task endpoint turns on BentoML's external queue; keep the concurrency target explicit
        "concurrency": int(cfg.traffic.max_concurrency),
    }
    resources = {"gpu": 1} if cfg.profile == "gpu" else {"cpu": "1"}
    return {"name": str(cfg.name), "traffic": traffic, "resources": resources, "workers": int(cfg.workers)}
