"""The serving config (configs/serving/default.yaml), readable without Hydra's global state.

The service module needs its values when its class is decorated (traffic, resources, middleware), so
it reads the YAML file directly, typed by :class:`cmet.conf.ServingConfig` (an unknown key or a wrong
type is a ConfigError). ``CMET_SERVING_CONFIG`` (another YAML file), ``CMET_SERVING_PROFILE`` (cpu |
gpu) and ``CMET_SERVING_SET`` (space-separated dotted overrides, e.g.
``"auth.enabled=true rate_limit.requests_per_minute=0"``) override it.
"""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONFIG_FILE = ROOT / "configs" / "serving" / "default.yaml"


def serving_cfg():
    """-> the ``serving`` config node (a typed OmegaConf DictConfig)."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    from cmet.conf import ServingConfig, typed
    from cmet.errors import ConfigError

    raw = OmegaConf.load(os.environ.get("CMET_SERVING_CONFIG", CONFIG_FILE))
    raw.pop("defaults", None)
    extra = os.environ.get("CMET_SERVING_SET", "").split()
    if os.environ.get("CMET_SERVING_PROFILE"):
        extra.append(f"profile={os.environ['CMET_SERVING_PROFILE']}")
    try:
        cfg = typed(OmegaConf.merge(raw, OmegaConf.from_dotlist(extra)), ServingConfig)
    except OmegaConfBaseException as e:
        raise ConfigError(f"serving config: {str(e).splitlines()[0]}") from None
    if cfg.profile not in ("cpu", "gpu"):
        raise ConfigError(f"serving.profile={cfg.profile!r}; expected cpu or gpu")
    return cfg


def work_dir(cfg) -> Path:
    """This server process's work folder (request temp folders, jobs): ``serving.work_dir/<pid>``."""
    base = Path(str(cfg.work_dir))
    return (base if base.is_absolute() else ROOT / base) / str(os.getpid())


def claim_work_dir(cfg) -> Path:
    """Create this process's work folder, removed when the process exits; the folders of server
    processes that are gone (killed before they could clean up) are removed now."""
    import atexit
    import shutil

    mine = work_dir(cfg)
    for other in mine.parent.glob("*") if mine.parent.is_dir() else []:
        if other.name.isdigit() and other != mine and not _alive(int(other.name)):
            shutil.rmtree(other, ignore_errors=True)
    mine.mkdir(parents=True, exist_ok=True)
    atexit.register(shutil.rmtree, mine, True)
    return mine


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def service_config(cfg) -> dict:
    """The ``@bentoml.service(**config)`` keywords of a serving config."""
    traffic = {"timeout": int(cfg.traffic.timeout), "max_concurrency": int(cfg.traffic.max_concurrency)}
    resources = {"gpu": 1} if cfg.profile == "gpu" else {"cpu": "1"}
    return {"name": str(cfg.name), "traffic": traffic, "resources": resources, "workers": int(cfg.workers)}
