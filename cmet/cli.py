"""The library half of the ``cmet`` command (train, evaluate, data, speech, face).

One CLI style, followed by every command module (``cmet/commands/<area>.py``, ``flows/commands*``,
``serving/commands.py``):

* a module-level ``app = typer.Typer(...)`` and top-level ``@app.command("name")`` functions (no
  closures inside a ``register(app)`` function). ``typer.Typer(name="data", help=...)`` makes the
  module a command group (``cmet data generate``); a nameless ``typer.Typer()`` holds top-level
  commands (``cmet train``), merged into the root. A sub-group is one more module-level app added
  with ``app.add_typer(sub_app)`` (``cmet face assets ensure``);
* the entry point lists the apps: :data:`LIBRARY_APPS` here, ``ORCHESTRATION_MODULES`` in ``flows/cli.py``
  (which is the console script, so that this package never imports Prefect, MLflow or BentoML);
* a command composes its config (``cmet.config.compose(overrides)``, overrides as a trailing
  argument list) and passes ``cfg`` (or ``cfg.face``...) to the library, which never composes;
* heavy imports (torch, hydra, cv2, the library's modules) go inside the command functions, so
  ``cmet --help`` stays fast; a command module imports only typer and the standard library at the top;
* bad input raises a :class:`~cmet.errors.CmetError`; :func:`run_app` prints it as one line, exit 2.
"""

from __future__ import annotations

import sys

import typer

from cmet.commands import data, face, model, speech

#: the library's command apps, in the order of ``cmet --help``
LIBRARY_APPS: tuple[typer.Typer, ...] = (model.app, data.app, speech.app, face.app)


def build_app(*extra: typer.Typer) -> typer.Typer:
    """The root ``cmet`` app: the library's command apps, then ``extra`` ones (orchestration)."""
    root = typer.Typer(
        name="cmet",
        help="C-MET: speech-driven emotion editing of talking-face video, and the MLOps around it.",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        add_completion=False,
    )
    for sub in (*LIBRARY_APPS, *extra):
        root.add_typer(sub)
    return root


#: the library-only ``cmet`` (``python -m cmet.cli``); the console script is ``flows.cli:app``
app = build_app()


def run_app(root: typer.Typer, args: list[str] | None = None) -> None:
    """Run a Typer app, turning :class:`~cmet.errors.CmetError` into one clear line and exit code 2."""
    import click

    from cmet.errors import CmetError

    try:
        root(args, standalone_mode=False)
    except CmetError as e:
        typer.secho(f"error: {e}", fg="red", err=True)
        sys.exit(2)
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except typer.Abort:
        sys.exit(1)
    except click.ClickException as e:  # usage errors
        e.show()
        sys.exit(e.exit_code)


def main() -> None:
    from cmet.env import configure_local_env

    configure_local_env()
    run_app(app)


if __name__ == "__main__":
    main()
