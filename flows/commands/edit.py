"""``cmet edit``: the emotion of a neutral talking-face video.

The command composes the config (Hydra overrides as trailing arguments, e.g. ``face.render_gain=1.4``),
finds the model (``--model``, else :func:`flows.registry.default_bundle`: the registry's champion,
else the newest local bundle), builds the :class:`cmet.target.Target` and calls
:func:`cmet.edit.edit_video`. Heavy imports inside the command (``cmet --help`` stays fast).
"""

from __future__ import annotations

from pathlib import Path

import typer

#: top-level command (``cmet edit``)
app = typer.Typer()


def cli_target(
    emotion: str | None = None,
    blend: str | None = None,
    emotion_features: Path | None = None,
    emotion_speech: Path | None = None,
    *,
    d_speech: int,
    timeline: str | None = None,
    timeline_speech: Path | None = None,
    timeline_hop: float | None = None,
    transition: float | None = None,
    bundle=None,
):
    """The target options -> a :class:`cmet.target.Target` or a :class:`cmet.timeline.Timeline`
    (exactly one must be given).

    ``--emotion`` takes a name or any blend spelling of :func:`cmet.target.parse_blend`; ``--blend``
    a blend; ``--emotion-features`` a folder of ``.npy`` vectors; ``--emotion-speech`` speech files or a
    folder of them (encoded with the model's own speech encoder); ``--timeline`` the string or file
    form of :func:`cmet.timeline_parse.parse_timeline`; ``--timeline-speech`` a speech track
    (:func:`cmet.timeline_speech.speech_timeline`, needs ``bundle``)."""
    from cmet.errors import DataError
    from cmet.target import Target, load_feature_folder, parse_blend
    from cmet.timeline import DEFAULT_TRANSITION_S
    from cmet.timeline_parse import parse_timeline

    opts = (emotion, blend, emotion_features, emotion_speech, timeline, timeline_speech)
    if sum(x is not None for x in opts) != 1:
        raise DataError(
            "give exactly one of --emotion, --blend, --emotion-features, --emotion-speech, --timeline, "
            "--timeline-speech"
        )
    if timeline_hop is not None and timeline_speech is None:
        raise DataError("--timeline-hop goes with --timeline-speech")
    if transition is not None and timeline is None and timeline_speech is None:
        raise DataError("--transition goes with --timeline or --timeline-speech")
    tr = DEFAULT_TRANSITION_S if transition is None else transition
    if timeline is not None:
        return parse_timeline(timeline, transition_s=tr, d_speech=d_speech)
    if timeline_speech is not None:
        from cmet.timeline_speech import speech_timeline

        return speech_timeline(timeline_speech, bundle, hop_s=timeline_hop, transition_s=tr)
    if emotion is not None:
        return Target.of(emotion)
    if blend is not None:
        return Target("blend", blend=tuple(parse_blend(blend).items()))
    if emotion_features is not None:
        return Target(
            "features", features=load_feature_folder(emotion_features, d_speech, "--emotion-features")
        )
    return Target.speech([emotion_speech])


def _model(model: Path | None, cfg) -> tuple[Path, dict | None]:
    """The bundle folder and, for the registry's champion, its identity (flows.registry.default_bundle)."""
    if model is not None:
        return model, None
    from flows.registry import default_bundle

    return default_bundle(cfg)


@app.command("edit")
def edit(
    video: Path = typer.Option(..., "--video", help="neutral talking-face video (mp4)"),
    out: Path = typer.Option(..., "--out", help="edited mp4 (same frames, fps and audio)"),
    emotion: str = typer.Option(
        None, "--emotion", help="target emotion: a name (a bank saved with the model) or a blend"
    ),
    blend: str = typer.Option(
        None, "--blend", help="blend of named emotions: happy=0.7,surprised=0.3 (or happy:0.7, or JSON)"
    ),
    emotion_features: Path = typer.Option(
        None, "--emotion-features", help="folder of .npy speech features of the target emotion"
    ),
    emotion_speech: Path = typer.Option(
        None, "--emotion-speech", help="speech clips of the target emotion (a folder), the model's encoder"
    ),
    neutral_features: Path = typer.Option(
        None, "--neutral-features", help="folder of .npy neutral speech features (default: the model's)"
    ),
    intensity: float = typer.Option(1.0, "--intensity", help="emotion intensity (0 = no edit)"),
    model: Path = typer.Option(
        None, "--model", help="model bundle folder (default: the champion, else the newest under .cmet/)"
    ),
    codes_out: Path = typer.Option(
        None, "--codes-out", help="per-frame codes JSON (default: OUT with .json)"
    ),
    audio: Path = typer.Option(None, "--audio", help="speech to mux in (default: the video's own audio)"),
    face: str = typer.Option(
        "largest", "--face", help="face to edit: largest (default), all, or a number (0 = the largest)"
    ),
    timeline: str = typer.Option(
        None,
        "--timeline",
        help="targets over time, 'START:TARGET\\[@INTENSITY]\\[~TRANSITION], ...' in seconds, e.g. '0:neutral, "
        "2.0:happy@0.8, 4.5:sad~0.5' (a blend in an entry: 2:happy=0.7+surprised=0.3), or a .yaml/.json file. "
        "neutral = no edit, unedited before the first START; INTENSITY times --intensity; TRANSITION: "
        "cross-fade (s) centred on START (README: Emotion timeline)",
    ),
    timeline_speech: Path = typer.Option(
        None,
        "--timeline-speech",
        help="target speech track, each window editing its part of the video: .npy \\[windows, D], or audio "
        "with emotion2vec+large_features/<stem>.npy \\[windows, D] beside it (else the model's encoder)",
    ),
    timeline_hop: float = typer.Option(
        None, "--timeline-hop", help="s between --timeline-speech windows (default: <stem>.json, else tiled)"
    ),
    transition: float = typer.Option(None, "--transition", help="default timeline cross-fade (s, 1.0)"),
    overrides: list[str] = typer.Argument(None, help="config overrides, e.g. face.render_gain=1.4"),
):
    """Edit the emotion of a neutral talking-face video."""
    from cmet import __version__
    from cmet.config import compose
    from cmet.edit import edit_video
    from cmet.model.bundle import ModelBundle
    from cmet.provenance import stamp, tags
    from cmet.target import load_feature_folder
    from cmet.timeline import Timeline

    cfg = compose(list(overrides or []))
    model_dir, registry_id = _model(model, cfg)
    bundle = ModelBundle.load(model_dir, weights=False)  # sizes and banks; the weights load while tracking
    timed = dict(timeline=timeline, timeline_speech=timeline_speech, timeline_hop=timeline_hop)
    target = cli_target(
        emotion, blend, emotion_features, emotion_speech, d_speech=bundle.d_speech, transition=transition,
        bundle=bundle, **timed
    )  # fmt: skip
    is_timeline = isinstance(target, Timeline)
    neutral = None
    if neutral_features is not None:
        neutral = load_feature_folder(neutral_features, bundle.d_speech, "--neutral-features")
    res = edit_video(
        video,
        target,
        bundle=model_dir,
        threads=1,  # the connector is small: one thread is faster than two contended ones
        cfg=cfg,
        out=out,
        intensity=intensity,
        neutral=neutral,
        progress=True,
        audio=audio,
        face=face,
    )
    stamp(
        res.out,
        tags(
            registry_id or {"model": Path(model_dir).name, "version": bundle.meta.get("version", "local")},
            res.target,
            intensity,
            __version__,
            timeline=res.target if is_timeline else None,
        ),
        mark=cfg.serving.provenance.visible_mark,
    )
    codes = res.write_codes(codes_out or Path(out).with_suffix(".json"))
    _print_report(res, codes)


def _print_report(res, codes: Path) -> None:
    """What ``cmet edit`` wrote, its timings, the faces found and edited, the warnings (stderr)."""
    from rich.console import Console

    con = Console(stderr=True)
    con.print(
        f"[green]wrote[/] {res.out} ({res.n_frames} frames @ {res.fps:g} fps, target {res.target}); codes {codes}"
    )
    con.print("timings (s): " + ", ".join(f"{k} {v:.2f}" for k, v in res.timings.items()))
    rep = res.report
    edited = {f["face"]: f for f in rep["faces_edited"]}
    for f in rep["faces_found"]:
        e = edited.get(f["face"])
        what = (
            f"edited, {e['frames_passed_through']} frames passed through (face lost or turned away)"
            if e
            else "not edited (--face all or --face N edits it)"
        )
        con.print(f"face {f['face']}: {f['mean_size_px']:.0f} px, seen on {f['frames_seen']} frames; {what}")
    for w in rep["warnings"]:
        con.print(f"[yellow]warning:[/] {w}")
