"""``cmet face roundtrip`` and ``cmet face edits``: the face side's figures (heavy imports inside)."""

from __future__ import annotations

from pathlib import Path

import typer

#: commands of the ``cmet face`` group (added to :data:`cmet.commands.face.app`)
app = typer.Typer()


def _release(cfg, release: Path | None) -> Path | None:
    rel = release or Path(str(cfg.paths.release_dir))
    return rel if rel.is_dir() else None


@app.command("roundtrip")
def roundtrip(
    out: Path = typer.Option(Path("outputs/face"), "--out", help="folder of the JSON and heat maps"),
    n: int = typer.Option(76, "--n", help="codes per mode and face"),
    gain: float = typer.Option(1.0, "--gain", help="render gain of the round trip (1 = the FACS apex)"),
    tta: int = typer.Option(1, "--tta", help="FaceMesh crops averaged per image"),
    landmarks: str = typer.Option("flow", "--landmarks", help="landmark model: flow | facemesh"),
    release: Path = typer.Option(None, "--release", help="release folder (default: paths.release_dir)"),
    threads: int = typer.Option(1, "--threads", help="torch CPU threads"),
    overrides: list[str] = typer.Argument(None, help="config overrides"),
):
    """Codes -> render -> landmarks -> codes on every portrait: correlation per code and mode."""
    import json

    import torch

    from cmet.config import compose
    from cmet.errors import ConfigError
    from cmet.face.evaluate import round_trip_portraits

    if landmarks not in ("flow", "facemesh"):
        raise ConfigError(f"--landmarks {landmarks!r}: flow | facemesh")
    torch.set_num_threads(max(1, threads))
    cfg = compose(list(overrides or []))
    res = round_trip_portraits(_release(cfg, release), out, n=n, gain=gain, tta=tta, landmarks=landmarks)
    keep = ("summary", "mean_corr_per_code", "seen_share_mean", "figure", "identifiability_figure")
    typer.echo(json.dumps({k: res[k] for k in keep if k in res}, indent=1))


@app.command("edits")
def edits(
    model: Path = typer.Option(..., "--model", help="model bundle folder (trained with data=release_au)"),
    out: Path = typer.Option(Path("outputs/face/edits"), "--out", help="folder of the mp4s, strip, JSON"),
    video: Path = typer.Option(None, "--video", help="neutral video (default: the release's W009_038.mp4)"),
    intensity: float = typer.Option(1.0, "--intensity"),
    release: Path = typer.Option(None, "--release", help="release folder (default: paths.release_dir)"),
    overrides: list[str] = typer.Argument(None, help="config overrides, e.g. face.render_gain=1.4"),
):
    """``cmet edit`` of one neutral video towards each basic emotion, each edit measured
    (frames, audio, mouth-opening correlation, FER judge share), a strip of frames."""
    import json

    from cmet.config import compose
    from cmet.edit import edit_video, load_bundle
    from cmet.errors import DataError
    from cmet.face.edit_measures import measure_edits
    from cmet.face.evaluate import BASIC

    cfg = compose(list(overrides or []))
    rel = _release(cfg, release)
    if video is None and rel is None:
        raise DataError("edits: give --video, or have the release (paths.release_dir) for W009_038.mp4")
    video = video or rel / "asset" / "video" / "W009_038.mp4"
    bundle = load_bundle(model)
    out.mkdir(parents=True, exist_ok=True)
    results = {}
    for e in BASIC:
        results[e] = edit_video(video, e, bundle=bundle, cfg=cfg, out=out / f"{e}.mp4", intensity=intensity)
        results[e].write_codes(out / f"{e}.json")
    typer.echo(json.dumps(measure_edits(video, results, out), indent=1))
