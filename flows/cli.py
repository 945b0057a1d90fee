"""The ``cmet`` console entry point: the library's commands plus the orchestration commands.

Orchestration commands live in ``flows/`` and ``serving/`` (Prefect, MLflow, BentoML inside the
commands), so that the ``cmet`` package itself never imports them. The style is the one written at
the top of :mod:`cmet.cli`: each module has a module-level Typer ``app``, listed below.
"""

from __future__ import annotations

import typer

import flows.commands.batch
import flows.commands.edit
import flows.commands.ops
import flows.commands.pipeline
import serving.commands
from cmet.cli import build_app, run_app

#: orchestration command modules (each a module-level Typer ``app``; see cmet.cli)
ORCHESTRATION_MODULES = (
    flows.commands.edit,
    flows.commands.batch,
    flows.commands.pipeline,
    flows.commands.ops,
    serving.commands,
)


#: the console script's root app: the library's commands, then the orchestration ones
app: typer.Typer = build_app(*(m.app for m in ORCHESTRATION_MODULES))


def main() -> None:
    from cmet.env import configure_local_env

    configure_local_env()
    run_app(app)


if __name__ == "__main__":
    main()
