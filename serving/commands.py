"""``cmet bento build`` and ``cmet bento serve`` (registered by flows.cli)."""

from __future__ import annotations

import os

import typer


def register(app: typer.Typer) -> None:
    bento = typer.Typer(help="BentoML packaging and serving of the model.", no_args_is_help=True)

    @bento.command("build")
    def build(
        model_uri: str = typer.Option(
            None, "--model-uri", help="registry model, default serving.registry_uri (models:/cmet@champion)"
        ),
        bundle: str = typer.Option(None, "--bundle", help="a model bundle folder instead of the registry"),
        profile: str = typer.Option(
            None, "--profile", help="cpu | gpu (gpu: CUDA base image, asks for a GPU)"
        ),
        override: list[str] = typer.Option([], "--set", "-s", help="Hydra override, e.g. serving.port=3100"),
    ) -> None:
        """Import the model into the BentoML store and build the bento (offline)."""
        from cmet.config import compose
        from cmet.errors import ConfigError
        from serving.build import build_bento

        if model_uri and bundle:
            raise ConfigError("give --model-uri or --bundle, not both")
        cfg = compose(list(override) + ([f"serving.profile={profile}"] if profile else []))
        tag = build_bento(bundle or model_uri or str(cfg.serving.registry_uri), cfg)
        typer.echo(tag)

    @bento.command("serve")
    def serve(
        tag: str = typer.Option(None, "--bento", help="bento tag, default the latest build of serving.name"),
        host: str = typer.Option(None, "--host"),
        port: int = typer.Option(None, "--port"),
    ) -> None:
        """Serve a built bento (the latest by default) on localhost; Ctrl-C stops it."""
        import sys

        from serving.settings import serving_cfg

        cfg = serving_cfg()
        tag = tag or latest_bento(str(cfg.name))
        args = [
            sys.executable,
            "-m",
            "bentoml",
            "serve",
            tag,
            "--host",
            host or str(cfg.host),
            "--port",
            str(port or int(cfg.port)),
        ]
        typer.echo(f"serving {tag} on http://{host or cfg.host}:{port or cfg.port} (demo page: /ui/)")
        os.execv(sys.executable, args)

    app.add_typer(bento, name="bento")


def latest_bento(name: str) -> str:
    """The tag of the newest bento called ``name`` in the local store."""
    import bentoml

    from cmet.errors import ModelError

    try:
        return str(bentoml.bentos.get(f"{name}:latest").tag)
    except bentoml.exceptions.NotFound:
        raise ModelError(
            f"no bento {name!r} in {os.environ.get('BENTOML_HOME')}; build one: make bento"
        ) from None
