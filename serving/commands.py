"""``cmet bento build | serve | loadtest | judge-check`` (listed by flows.cli; heavy imports inside)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import typer

app = typer.Typer(
    name="bento", help="BentoML packaging, serving and checks of the model.", no_args_is_help=True
)

LOOPBACK = ("127.0.0.1", "localhost", "::1")


@app.command("build")
def build(
    model_uri: str = typer.Option(
        None, "--model-uri", help="registry model, default serving.registry_uri (models:/cmet@champion)"
    ),
    bundle: str = typer.Option(None, "--bundle", help="a model bundle folder instead of the registry"),
    profile: str = typer.Option(None, "--profile", help="cpu | gpu (gpu: CUDA base image, asks for a GPU)"),
    overrides: list[str] = typer.Argument(None, help="Hydra overrides, e.g. serving.port=3100"),
) -> None:
    """Import the model into the BentoML store and build the bento (offline)."""
    from cmet.config import compose
    from cmet.errors import ConfigError
    from serving.build import build_bento

    if model_uri and bundle:
        raise ConfigError("give --model-uri or --bundle, not both")
    cfg = compose(list(overrides or []) + ([f"serving.profile={profile}"] if profile else []))
    typer.echo(build_bento(bundle or model_uri or str(cfg.serving.registry_uri), cfg))


@app.command("serve")
def serve(
    tag: str = typer.Option(None, "--bento", help="bento tag, default the latest build of serving.name"),
    host: str = typer.Option(None, "--host", help="default serving.host (loopback)"),
    port: int = typer.Option(None, "--port"),
) -> None:
    """Serve a built bento (the latest by default); Ctrl-C stops it. A host other than loopback needs
    serving.auth.enabled (an API key), so that no route is published open by mistake."""
    import sys

    from cmet.errors import ConfigError
    from serving.settings import serving_cfg

    cfg = serving_cfg()
    host = host or str(cfg.host)
    if host not in LOOPBACK and not cfg.auth.enabled:
        raise ConfigError(
            f"--host {host} publishes every route; turn on the API key first "
            "(CMET_SERVING_SET='auth.enabled=true' with CMET_API_KEY set, or serving.auth in the config)"
        )
    tag = tag or latest_bento(str(cfg.name))
    args = [
        sys.executable,
        "-m",
        "bentoml",
        "serve",
        tag,
        "--host",
        host,
        "--port",
        str(port or int(cfg.port)),
    ]
    typer.echo(f"serving {tag} on http://{host}:{port or cfg.port} (demo page: /ui/)")
    os.execv(sys.executable, args)


@app.command("loadtest")
def loadtest(
    url: str = typer.Option(
        None, "--url", help="a running service (loopback); default: serve the latest bento"
    ),
    model_dir: Path = typer.Option(None, "--model-dir", help="serve this model folder instead of a bento"),
    clients: str = typer.Option("1,4,16", "--clients", help="concurrent clients per level"),
    requests_per_client: int = typer.Option(2, "--requests-per-client"),
    clip_seconds: float = typer.Option(1.0, "--clip-seconds"),
    max_seconds: float = typer.Option(120.0, "--max-seconds", help="time budget of one level"),
    out: Path = typer.Option(None, "--out", help="write the result as JSON here"),
) -> None:
    """p50/p95 latency, throughput and failed requests of /expressions and /edit at 1, 4, 16 clients."""
    from serving.loadtest import run_loadtest

    res = run_loadtest(
        url,
        clients=tuple(int(x) for x in clients.split(",")),
        model_dir=model_dir,
        requests_per_client=requests_per_client,
        clip_seconds=clip_seconds,
        max_seconds_per_level=max_seconds,
    )
    _emit(res, out)
    if res["failed_total"]:
        raise typer.Exit(1)


@app.command("judge-check")
def judge_check(
    video: Path = typer.Argument(..., help="a talking-face video to edit"),
    url: str = typer.Option("http://127.0.0.1:3000", "--url"),
    emotion: str = typer.Option("happy", "--emotion"),
    intensity: float = typer.Option(1.0, "--intensity"),
    sheet: Path = typer.Option(None, "--sheet", help="PNG contact sheet (input vs edited frames)"),
    api_key: str = typer.Option(
        None, "--api-key", envvar="CMET_API_KEY", help="when the service needs a key"
    ),
) -> None:
    """Ask a running service to edit ``video``, then let the FER judge say what it sees on each frame."""
    from serving.judge_check import judge_edit

    res = judge_edit(url, video, emotion, intensity, sheet, api_key=api_key)
    _emit(res, None)
    if not res.get("ok"):
        raise typer.Exit(1)


@app.command("footprint")
def footprint(out: Path = typer.Option(None, "--out", help="write the result as JSON here")) -> None:
    """Installed size of the bento's requirements (the serving extra) vs the project's base dependencies,
    measured over this environment's installed distributions (the image's Python layer, no docker)."""
    from serving.footprint import footprint as measure

    _emit(measure(), out)


def _emit(res: dict, out: Path | None) -> None:
    text = json.dumps(res, indent=2)
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)
    typer.echo(text)


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
