"""Keep every store inside the project's working folder and analytics off.

Call :func:`configure_local_env` at the start of an entry point (CLI, flow, service, tests). It only
sets variables that are not already set, so a deployment can point them elsewhere (PostgreSQL, S3...).
"""

from __future__ import annotations

import os
from pathlib import Path


def project_root() -> Path:
    return Path(os.environ.get("CMET_ROOT", Path(__file__).resolve().parent.parent))


def configure_local_env(root: str | Path | None = None) -> Path:
    root = Path(root) if root else project_root()
    work = root / ".cmet"
    (work / "mlflow").mkdir(parents=True, exist_ok=True)
    defaults = {
        "CMET_ROOT": str(root),
        "PREFECT_HOME": str(work / "prefect"),
        "MLFLOW_TRACKING_URI": f"sqlite:///{work / 'mlflow' / 'mlflow.db'}",
        "BENTOML_HOME": str(work / "bentoml"),
        "DO_NOT_TRACK": "1",
        "BENTOML_DO_NOT_TRACK": "true",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    }
    for k, v in defaults.items():
        os.environ.setdefault(k, v)
    return root
