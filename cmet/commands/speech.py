"""``cmet speech encode|eval|prosody-ref|student``: the speech encoders, their figure, their references."""

from __future__ import annotations

import json
from pathlib import Path

import typer

app = typer.Typer(
    name="speech",
    help="Speech encoders: encode audio, measure the speaker-transfer figure, fit the prosody reference.",
    no_args_is_help=True,
)


@app.command("encode")
def encode_cmd(
    folder: Path = typer.Argument(
        ..., help="a folder of audio files (wav/flac/mp3/m4a/mp4), searched recursively"
    ),
    overrides: list[str] = typer.Argument(None, help="Hydra overrides, e.g. audio=prosody"),
    out: Path = typer.Option(None, "--out", help="output .npz (default: <folder>/speech_<encoder>.npz)"),
) -> None:
    """Encode every audio file of a folder -> npz (names, embeddings [N, D]); audio reports printed."""
    from cmet.audio.cache import encode_cached
    from cmet.audio.encoders import get_encoder
    from cmet.audio.io import find_audio, load_audio
    from cmet.config import compose

    cfg = compose(list(overrides or []))
    files = find_audio(folder)
    for f in files:
        _, rep = load_audio(f)
        if rep.warnings:
            typer.echo(f"{f.name}: " + "; ".join(rep.warnings))
    enc = get_encoder(cfg.audio)
    x, stats = encode_cached(enc, files, cfg.paths.cache_dir)
    import numpy as np

    out = out or folder / f"speech_{enc.name}.npz"
    np.savez(out, names=np.array([str(f.relative_to(folder)) for f in files]), embeddings=x)
    typer.echo(f"{len(files)} clips -> {x.shape} with {enc.name} ({stats['hits']} cached) -> {out}")


@app.command("eval")
def eval_cmd(
    overrides: list[str] = typer.Argument(
        None, help="Hydra overrides, e.g. audio=prosody / audio=precomputed"
    ),
    out: Path = typer.Option(
        None, "--out", help="folder for JSON + confusion PNG (default: runs_dir/speech_eval)"
    ),
    projection: str = typer.Option("none", help="none | standardize | lda (fit on the other speakers only)"),
    draws: int = typer.Option(50, help="random k-clip draws per speaker x emotion"),
) -> None:
    """The speech-side figure on the real MEAD speech of ../shared (k = 1, 3, 5; chance 1/7)."""
    from rich.console import Console
    from rich.table import Table

    from cmet.audio.cache import encode_cached
    from cmet.audio.encoders import get_encoder
    from cmet.audio.evaluate import evaluate_speaker_transfer, mead_release_table, plot_confusion
    from cmet.config import compose

    cfg = compose(list(overrides or []))
    t = mead_release_table(cfg.paths.release_dir)
    enc = get_encoder(cfg.audio)
    x, _ = encode_cached(enc, list(t["audio_path"]), cfg.paths.cache_dir)
    res = evaluate_speaker_transfer(
        x, t["identity"], t["emotion"], ks=(1, 3, 5), n_draws=draws, seed=0, projection=projection
    )
    tab = Table(title=f"speaker transfer of k-clip speech differences ({enc.name}, projection={projection})")
    tab.add_column("k")
    tab.add_column("acc %", justify="right")
    for e in res["emotions"]:
        tab.add_column(e[:5], justify="right")
    for k in (1, 3, 5):
        tab.add_row(
            str(k),
            f"{100 * res['acc'][k]:.1f}",
            *[f"{100 * res['per_emotion'][k][e]:.0f}" for e in res["emotions"]],
        )
    Console().print(tab)
    typer.echo(
        f"chance {100 * res['chance']:.1f} %, {len(t)} clips, speakers {sorted(t['identity'].unique())}"
    )
    out = out or Path(cfg.paths.runs_dir) / "speech_eval"
    out.mkdir(parents=True, exist_ok=True)
    stem = f"{enc.name}_{projection}"
    (out / f"{stem}.json").write_text(json.dumps(res, indent=2, default=str))
    png = plot_confusion(
        res, 5, out / f"{stem}_k5.png", f"{enc.name} ({projection}) k=5: {res['acc'][5]:.2f}"
    )
    typer.echo(f"results: {out / (stem + '.json')}\nconfusion: {png}")


@app.command("prosody-ref")
def prosody_ref_cmd(
    features: Path = typer.Argument(..., help="a generated FeatureSet folder (prosody features)"),
) -> None:
    """Print REF_MEAN / REF_SCALE of the prosody normalisation, fit on a FeatureSet's train split."""
    from cmet.audio.prosody_ref import fit

    typer.echo(fit(features))


@app.command("student")
def student_cmd(
    release: Path = typer.Argument(
        ..., help="the release folder (its audio; the targets are the vendored vectors)"
    ),
    out: Path = typer.Argument(..., help="weights file to write (.safetensors)"),
    hidden: int = typer.Option(256, "--hidden", help="hidden units of the MLP"),
    steps: int = typer.Option(1500, "--steps", help="training steps"),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """Train the student of emotion2vec+large (raw speech -> 1024-d) on the release's clips."""
    from cmet.audio.student import release_inputs, train_student

    x, y, _ = release_inputs(release)
    w = train_student(x, y, hidden=hidden, steps=steps, seed=seed)
    meta = {
        "hidden": hidden,
        "steps": steps,
        "seed": seed,
        "n_clips": len(x),
        "inputs": "prosody-v4+logmel64",
    }
    typer.echo(w.save(out, meta))
