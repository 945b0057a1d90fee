"""The ``cmet`` console entry point: the library commands plus orchestration commands.

Orchestration command groups live in ``flows/commands_<area>.py`` (``register(app)``), so that the
``cmet`` package itself never imports Prefect, MLflow-registry logic or BentoML.
"""

from __future__ import annotations

import importlib

from cmet.cli import build_app, run_app

ORCHESTRATION_MODULES = (
    "flows.commands_pipeline",
    "serving.commands",
)


def build_full_app():
    app = build_app()
    for name in ORCHESTRATION_MODULES:
        try:
            mod = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name != name:
                raise
            continue
        mod.register(app)
    return app


def main() -> None:
    from cmet.env import configure_local_env

    configure_local_env()
    run_app(build_full_app())


if __name__ == "__main__":
    main()
