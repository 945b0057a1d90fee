"""``cmet edit``: the emotion of a neutral talking-face video (heavy imports inside)."""

from __future__ import annotations

from pathlib import Path

import typer

#: top-level command (``cmet edit``)
app = typer.Typer()


@app.command("edit")
def edit(
    video: Path = typer.Option(..., "--video", help="neutral talking-face video (mp4)"),
    emotion: str = typer.Option(
        None, "--emotion", help="target emotion by name (a bank saved with the model)"
    ),
    out: Path = typer.Option(..., "--out", help="edited mp4 (same frames, fps and audio)"),
    model: Path = typer.Option(
        None, "--model", help="model bundle folder (default: champion, else newest under .cmet/)"
    ),
    emotion_features: Path = typer.Option(
        None, "--emotion-features", help="folder of .npy speech features of the target emotion"
    ),
    emotion_speech: Path = typer.Option(
        None, "--emotion-speech", help="folder of speech clips (.wav) of the target emotion"
    ),
    neutral_features: Path = typer.Option(
        None, "--neutral-features", help="folder of .npy neutral speech features"
    ),
    intensity: float = typer.Option(1.0, "--intensity", help="emotion intensity (0 = no edit)"),
    blend: str = typer.Option(None, "--blend", help="blend of named emotions, e.g. happy=0.7,surprised=0.3"),
    codes_out: Path = typer.Option(
        None, "--codes-out", help="per-frame codes JSON (default: OUT with .json)"
    ),
    audio: Path = typer.Option(None, "--audio", help="speech to mux in (default: the video's own audio)"),
    overrides: list[str] = typer.Argument(None, help="Hydra overrides, e.g. face.video_jaw_gain=0.6"),
):
    """Edit the emotion of a neutral talking-face video."""
    import torch
    from rich.console import Console

    from cmet.config import compose
    from cmet.edit import edit_video, load_bundle
    from cmet.errors import DataError
    from cmet.target import Target, load_feature_folder, parse_blend

    torch.set_num_threads(1)  # the connector is small: one thread is faster than two contended ones
    given = [x is not None for x in (emotion, emotion_features, emotion_speech, blend)]
    if sum(given) != 1:
        raise DataError("give exactly one of --emotion, --blend, --emotion-features, --emotion-speech")
    cfg = compose(list(overrides or []))
    b = load_bundle(model)
    if emotion is not None:
        target = emotion
    elif blend is not None:
        target = parse_blend(blend)
    elif emotion_features is not None:
        target = load_feature_folder(emotion_features, b.d_speech, "--emotion-features")
    else:
        target = Target.speech([emotion_speech])
    res = edit_video(
        video,
        target,
        bundle=b,
        out=out,
        neutral=neutral_features,
        intensity=intensity,
        codes_out=codes_out or Path(out).with_suffix(".json"),
        audio=audio,
        progress=True,
        cfg=cfg,
    )
    con = Console(stderr=True)
    con.print(
        f"[green]wrote[/] {res.out_path} ({res.n_frames} frames @ {res.fps:g} fps, target {res.target}); "
        f"codes {res.codes_path}"
    )
    con.print("timings (s): " + ", ".join(f"{k} {v:.2f}" for k, v in res.timings.items()))
