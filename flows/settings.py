"""Prefect environment defaults, applied before Prefect is imported (its settings load at import).

Prefect-free on purpose: entry points call :func:`configure_prefect_env` first, then import flows.
"""

from __future__ import annotations

import os


def configure_prefect_env() -> None:
    """Stores inside .cmet/ (cmet.env), a patient start of Prefect's temporary local server on a busy
    2-core machine, persisted task results (for caching). Only sets variables not already set."""
    from cmet.env import configure_local_env

    configure_local_env()
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
    os.environ.setdefault("PREFECT_RESULTS_PERSIST_BY_DEFAULT", "true")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
