"""``cmet data generate|look|vendor``: the embedded default dataset, the vendored release vectors."""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(
    name="data", help="Datasets: generate the embedded MEAD-like set, look at it.", no_args_is_help=True
)


@app.command("generate")
def generate_cmd(
    overrides: list[str] = typer.Argument(None, help="Hydra overrides, e.g. data.identities.train=4"),
    out: Path = typer.Option(None, "--out", help="where to save the FeatureSet (default: <clips>/features)"),
) -> None:
    """Generate the clips (cached), extract features, save the FeatureSet; print size and times."""
    import time

    from cmet.audio import extract_features
    from cmet.config import compose
    from cmet.data.generated import default_out_dir, generate

    cfg = compose(["data=generated", *(overrides or [])])
    clip_dir = default_out_dir(cfg)
    t0 = time.time()
    table = generate(cfg, clip_dir)
    t1 = time.time()
    fs = extract_features(cfg, table)
    fs.meta.update(source="generated")
    fs.validate()
    t2 = time.time()
    dest = fs.save(out or clip_dir / "features")
    c = fs.clips
    typer.echo(
        f"clips: {len(c)} ({c['identity'].nunique()} identities: "
        + ", ".join(f"{s} {c.loc[c['split'] == s, 'identity'].nunique()}" for s in ("train", "val", "test"))
        + f"; {len(fs.train_emotions)} emotions + extended {fs.extended_emotions})"
    )
    typer.echo(
        f"audio: {c['duration_s'].sum() / 60:.1f} min, frames: {int(c['n_frames'].sum())}, "
        f"speech dim {fs.d_speech} ({fs.meta['speech_encoder']['name']}), expr dim {fs.d_expr}"
    )
    typer.echo(
        f"time: generate {t1 - t0:.1f} s, features {t2 - t1:.1f} s "
        f"(speech cache: {fs.meta['speech_cache']['hits']} hits, {fs.meta['speech_cache']['encoded']} encoded)"
    )
    typer.echo(f"clips in {clip_dir}\nfeature set in {dest}")


@app.command("look")
def look_cmd(
    overrides: list[str] = typer.Argument(None, help="Hydra overrides of the generated set"),
    out: Path = typer.Option(None, "--out", help="folder for the PNGs (default: <clips>/look)"),
    identity: str = typer.Option(None, "--identity", help="identity of the spectrogram panel"),
) -> None:
    """Contact sheet of face-track renders per emotion + spectrogram panel per emotion (PNGs)."""
    from cmet.config import compose
    from cmet.data.generated import default_out_dir, generate
    from cmet.data.look import contact_sheet, spectrogram_panel

    cfg = compose(["data=generated", *(overrides or [])])
    clip_dir = default_out_dir(cfg)
    table = generate(cfg, clip_dir)
    out = out or clip_dir / "look"
    test_ids = sorted(table.loc[table["split"] == "test", "identity"].unique())
    ids = (test_ids or sorted(table["identity"].unique()))[:2]
    rel = Path(cfg.paths.release_dir)
    a = contact_sheet(table, out / "contact_sheet.png", ids, release_dir=rel if rel.is_dir() else None)
    b = spectrogram_panel(table, out / "spectrograms.png", identity or ids[0])
    typer.echo(f"contact sheet: {a}\nspectrograms:  {b}")


@app.command("vendor")
def vendor_cmd(
    release: Path = typer.Argument(None, help="the release folder (default: paths.release_dir)"),
) -> None:
    """Rewrite the vendored emotion2vec+large vectors of the package from the release folder."""
    from cmet.config import compose
    from cmet.data.vendor.build import write_vendored

    for p in write_vendored(release or Path(str(compose([]).paths.release_dir))):
        typer.echo(f"{p} {p.stat().st_size} bytes")
