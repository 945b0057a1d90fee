"""The library half of the ``cmet`` command (train, evaluate, edit, data, speech...).

Command groups live in ``cmet/commands/<area>.py``; each exposes ``register(app)``. Orchestration
commands (pipeline, promote, rollback, schedule, ui, bento) are added by ``flows.cli``, which is the
console entry point, so that this package never imports Prefect or BentoML.
Heavy imports happen inside the commands, so ``cmet --help`` is fast.
"""

from __future__ import annotations

import importlib
import sys

import typer

COMMAND_MODULES = (
    "cmet.commands.model",
    "cmet.commands.data",
    "cmet.commands.speech",
    "cmet.commands.face",
)


def build_app() -> typer.Typer:
    app = typer.Typer(
        name="cmet",
        help="C-MET: speech-driven emotion editing of talking-face video, and the MLOps around it.",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        add_completion=False,
    )
    for name in COMMAND_MODULES:
        try:
            mod = importlib.import_module(name)
        except ModuleNotFoundError as e:  # an area not written yet
            if e.name != name:
                raise
            continue
        mod.register(app)
    return app


def run_app(app: typer.Typer) -> None:
    """Run a Typer app, turning :class:`~cmet.errors.CmetError` into one clear line and exit code 2."""
    from cmet.errors import CmetError

    try:
        app(standalone_mode=False)
    except CmetError as e:
        typer.secho(f"error: {e}", fg="red", err=True)
        sys.exit(2)
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except typer.Abort:
        sys.exit(1)
    except Exception as e:  # click usage errors
        import click

        if isinstance(e, click.ClickException):
            e.show()
            sys.exit(e.exit_code)
        raise


def main() -> None:
    from cmet.env import configure_local_env

    configure_local_env()
    run_app(build_app())


if __name__ == "__main__":
    main()
