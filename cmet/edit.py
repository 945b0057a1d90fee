"""``cmet edit``: a neutral talking-face video + a target emotion -> the edited video.

Stages (each timed in ``EditResult.timings``):

1. ``read``      decode the video (OpenCV); its own audio track is kept for the output.
2. ``landmarks`` FaceMesh on every frame (tracked, One-Euro smoothed); the identity's neutral mesh
                 is the median of the first frames; per-frame AU / lips / pose codes
                 (:mod:`cmet.face.expression`).
3. ``audio``     the target emotion's speech features: a named bank saved with the model, a blend
                 of banks, a folder of ``.npy`` features, or speech clips (the bundle's encoder).
4. ``model``     the C-MET connector's autoregressive offsets ``[T, D_v]`` on the neutral AU codes;
                 the lip-moving AUs (:data:`LIP_AUS`) held as a running mean over
                 ``face.lip_hold_s`` (:func:`hold_lip_offsets`).
5. ``render``    every frame warped by its offset (its own lips and pose kept) + mouth interior
                 and shading (:mod:`cmet.face.render`); on video the emotional jaw drop takes
                 ``face.video_jaw_gain`` and AU10/AU16 ``face.video_lip_gain`` (lips kept: the
                 mouth-opening track of the output stays correlated >= 0.9 with the input's).
6. ``encode``    H.264 mp4 with the original speech muxed in (imageio-ffmpeg), same frame count/fps.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cmet.errors import DataError, ModelError, UnknownEmotionError, VideoError
from cmet.media import has_audio, read_video, write_video


@dataclass
class EditResult:
    out_path: Path | None
    fps: float
    n_frames: int
    neutral_codes: np.ndarray  # [T, D_v] AU codes of the input
    offsets: np.ndarray  # [T, D_v] predicted by the model
    edited_codes: np.ndarray  # [T, D_v]
    lips: np.ndarray  # [T, 2]
    pose: np.ndarray  # [T, 6]
    timings: dict[str, float] = field(default_factory=dict)
    target: str = ""
    landmarks: np.ndarray | None = None  # [T, 468, 3] input landmarks
    codes_path: Path | None = None

    @property
    def codes(self) -> np.ndarray:
        return self.edited_codes

    def codes_json(self) -> dict:
        from cmet.face.facs import AU_NAMES

        r = lambda a: np.round(np.asarray(a, np.float64), 4).tolist()  # noqa: E731
        return {
            "au_names": list(AU_NAMES),
            "fps": self.fps,
            "n_frames": self.n_frames,
            "target": self.target,
            "neutral_codes": r(self.neutral_codes),
            "offsets": r(self.offsets),
            "edited_codes": r(self.edited_codes),
            "lips": r(self.lips),
            "pose": r(self.pose),
            "lips_names": ["mouth_opening", "mouth_width"],
            "pose_names": ["rx", "ry", "rz", "tx", "ty", "log_scale"],
            "timings_s": {k: round(v, 4) for k, v in self.timings.items()},
        }


# ---------------------------------------------------------------------------------------- targets
def load_feature_folder(folder: str | Path, d_speech: int, what: str = "emotion features") -> np.ndarray:
    """A folder of ``.npy`` utterance features (each [D_a] or [1, D_a]) -> [k, D_a]."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{what}: {folder} is not a folder")
    files = sorted(folder.glob("*.npy"))
    if not files:
        raise DataError(f"{what}: no .npy files in {folder}")
    rows = []
    for f in files:
        try:
            a = np.load(f, allow_pickle=False)
        except Exception as e:  # corrupt file
            raise DataError(f"{what}: cannot read {f} ({e})") from None
        a = (
            np.asarray(a, np.float32).reshape(-1)
            if a.ndim == 2 and a.shape[0] == 1
            else np.asarray(a, np.float32)
        )
        if a.ndim != 1 or a.shape[0] != d_speech:
            raise DataError(
                f"{what}: {f.name} has shape {tuple(a.shape)}; this model expects [{d_speech}] "
                f"(or [1, {d_speech}]) features"
            )
        if not np.isfinite(a).all():
            raise DataError(f"{what}: {f.name} contains NaN/inf")
        rows.append(a)
    return np.stack(rows)


def parse_blend(text: str) -> dict[str, float]:
    """``"happy=0.7,surprised=0.3"`` -> {"happy": 0.7, "surprised": 0.3}."""
    out: dict[str, float] = {}
    for part in text.split(","):
        if not part.strip():
            continue
        if "=" not in part:
            raise DataError(f"blend {text!r}: expected emotion=weight pairs separated by commas")
        k, v = part.split("=", 1)
        try:
            out[k.strip()] = float(v)
        except ValueError:
            raise DataError(f"blend {text!r}: weight {v!r} is not a number") from None
    if not out:
        raise DataError(f"blend {text!r} is empty")
    return out


def _resolve_target(target, bundle, cfg=None):
    """str | dict | array | serving Target -> (what predict_offsets takes, description)."""
    if hasattr(target, "kind"):  # serving.inputs.Target (duck-typed: cmet never imports serving)
        kind = target.kind
        if kind == "name":
            target = target.emotion
        elif kind == "blend":
            target = dict(target.blend)
        elif kind == "features":
            target = np.asarray(target.features, np.float32)
        elif kind == "speech":
            target = speech_features(list(target.speech_paths), bundle, cfg)
    if isinstance(target, str):
        if target not in bundle.banks:
            raise UnknownEmotionError(f"unknown emotion {target!r}; this model knows {sorted(bundle.banks)}")
        return target, target
    if isinstance(target, dict):
        for e in target:
            if e not in bundle.banks:
                raise UnknownEmotionError(
                    f"blend: unknown emotion {e!r}; this model knows {sorted(bundle.banks)}"
                )
        return target, "+".join(f"{k}={v:g}" for k, v in target.items())
    arr = np.asarray(target, np.float32)
    if arr.ndim == 1:
        arr = arr[None]
    if arr.ndim != 2 or arr.shape[1] != bundle.d_speech:
        raise DataError(
            f"target features have shape {tuple(arr.shape)}; this model expects [k, {bundle.d_speech}]"
        )
    return arr, f"features x{len(arr)}"


def speech_features(paths, bundle, cfg=None) -> np.ndarray:
    """Speech clips -> [k, D_a] with the speech encoder configured for the model (cfg.audio)."""
    from cmet.audio import get_encoder

    if cfg is None:
        from cmet.config import compose

        cfg = compose([])
    enc = get_encoder(cfg.audio)
    feats = np.asarray(enc.encode_files([Path(p) for p in paths]), np.float32)
    if feats.ndim != 2 or feats.shape[1] != bundle.d_speech:
        raise ModelError(
            f"the speech encoder {getattr(enc, 'name', '?')!r} gives features {tuple(feats.shape)}; "
            f"this model expects [k, {bundle.d_speech}] (pass --emotion-features instead)"
        )
    return feats


def default_bundle_dir(cfg=None) -> Path:
    """The champion (MLflow alias ``champion``) if the registry has one, else the newest bundle
    under ``.cmet/`` (runs/, models/)."""
    from cmet.env import configure_local_env, project_root

    # the registry lookup must use the project's store, also when a library caller (python -m
    # cmet.face.evaluate edits, a notebook) did not configure it: MLflow would create ./mlflow.db
    configure_local_env()
    work = project_root() / ".cmet"
    name = "cmet"
    if cfg is not None:
        name = str(cfg.get("pipeline", {}).get("registered_model", name))
    try:  # the registry's champion, downloaded once into .cmet/models/champion-<version>
        import mlflow
        from mlflow import MlflowClient

        mv = MlflowClient().get_model_version_by_alias(name, "champion")
        dst = work / "models" / f"champion-v{mv.version}"
        if not any(dst.rglob("bundle.json")):
            dst.mkdir(parents=True, exist_ok=True)
            mlflow.artifacts.download_artifacts(
                artifact_uri=f"models:/{name}/{mv.version}", dst_path=str(dst)
            )
        hits = sorted(dst.rglob("bundle.json"), key=lambda p: len(p.parts))
        if hits:
            return hits[0].parent
    except Exception:  # no registry / no champion: fall back to the newest local bundle
        pass
    hits = [p for d in ("runs", "models") for p in (work / d).rglob("bundle.json")] if work.is_dir() else []
    if not hits:
        raise ModelError(
            f"no trained model found (no champion in the registry, no bundle under {work}); "
            "train one (cmet train data=release_au) or pass --model BUNDLE_DIR"
        )
    return max(hits, key=lambda p: p.stat().st_mtime).parent


def load_bundle(bundle, device=None):
    from cmet.model.bundle import ModelBundle

    if isinstance(bundle, ModelBundle):
        return bundle
    return ModelBundle.load(Path(bundle) if bundle is not None else default_bundle_dir(), device)


# ---------------------------------------------------------------------------------------- the edit
def edit_video(
    video,
    target=None,
    *,
    emotion=None,
    bundle=None,
    out=None,
    out_path=None,
    neutral=None,
    intensity: float = 1.0,
    render: bool = True,
    cfg=None,
    max_seconds: float | None = None,
    codes_out=None,
    audio=None,
    progress: bool = False,
    gain: float | None = None,
    shading: float | None = None,
) -> EditResult:
    """Edit ``video`` towards ``target`` (or ``emotion``): an emotion name, a blend dict, speech
    features [k, D_a], or a serving Target. ``neutral``: neutral speech features [m, D_a] (default:
    the bundle's neutral bank). Writes ``out``/``out_path`` (mp4 with the input's speech, or
    ``audio``) when ``render``; ``codes_out``: per-frame codes JSON. Returns :class:`EditResult`."""
    from cmet.face.expression import canonical, encode, neutral_reference
    from cmet.face.facs import D_EXPR
    from cmet.face.landmarks import FaceMesh
    from cmet.face.render import FaceRenderer

    fcfg = _face_cfg(cfg)
    gain = float(fcfg.get("render_gain", 1.6)) if gain is None else float(gain)
    shading = float(fcfg.get("shading", 1.0)) if shading is None else float(shading)
    target = emotion if target is None else target
    if target is None:
        raise DataError("edit: give a target emotion (name, blend or features)")
    out = out if out is not None else out_path
    timings: dict[str, float] = {}
    t_all = time.perf_counter()

    t = time.perf_counter()
    b = load_bundle(bundle)
    if int(b.d_expr) != D_EXPR:
        raise ModelError(
            f"the model works in a {b.d_expr}-d expression space; the face renderer needs the "
            f"{D_EXPR} action units of cmet.face.facs (train it with data=release_au)"
        )
    window = int(b.model_cfg.get("window", 5))
    timings["load_model"] = time.perf_counter() - t

    t = time.perf_counter()  # the target's speech features (banks, a folder, or clips encoded here)
    tgt, desc = _resolve_target(target, b, cfg)
    neu = None
    if neutral is not None:
        neu = (
            load_feature_folder(neutral, b.d_speech, "neutral features")
            if isinstance(neutral, str | Path)
            else np.asarray(neutral, np.float32)
        )
    timings["audio"] = time.perf_counter() - t

    t = time.perf_counter()
    frames, fps = read_video(video, max_seconds)
    name = Path(str(video)).name
    if len(frames) < window:
        raise VideoError(
            f"video {name} has {len(frames)} frames, shorter than one chunk of the model (T={window} frames)"
        )
    timings["read"] = time.perf_counter() - t

    t = time.perf_counter()
    fm = FaceMesh()
    tracks = fm.track(frames, name=name, progress=progress)
    ref = neutral_reference(tracks)
    can = canonical(ref)
    codes = encode(can, tracks)
    neutral_codes = slow_expression(codes.au, fps)
    timings["landmarks"] = time.perf_counter() - t

    t = time.perf_counter()
    offsets = b.predict_offsets(neutral_codes, tgt, neutral=neu, intensity=intensity)
    offsets = np.asarray(offsets, np.float32)
    if len(offsets) > 2:  # an emotion changes slowly; the chunked prediction steps at chunk borders
        from cmet.face.landmarks import one_euro

        offsets = one_euro(offsets, fps=fps, min_cutoff=0.5, beta=0.0)
    offsets = hold_lip_offsets(offsets, fps, float(fcfg.get("lip_hold_s", 4.0)))
    edited = neutral_codes + offsets
    timings["model"] = time.perf_counter() - t

    out_file = None
    if render and out is not None:
        t = time.perf_counter()
        # the emotional jaw drop on a talking video: ``face.video_jaw_gain`` x its apex (a wide,
        # warped-open mouth is tracked poorly by FaceMesh and loses the speech lip track)
        rend = FaceRenderer(
            can,
            frames.shape[1:3],
            shading_strength=shading,
            gain=gain,
            jaw_gain=float(fcfg.get("video_jaw_gain", 1.0)),
            au_gains={a: float(fcfg.get("video_lip_gain", gain)) for a in LIP_OPENING_AUS},
        )
        out_frames = np.empty_like(frames)
        it = range(len(frames))
        if progress:
            from tqdm import tqdm

            it = tqdm(it, desc="render", unit="frame", leave=False)
        # the input is neutral: an edit adds muscle activity and removes none. The negative part
        # of an offset only cancels encoder noise of the input codes; rendered it runs a muscle
        # backwards (a "negative AU9" pushes the brows up), so it is dropped; 2 x apex at most
        delta = np.clip(offsets, 0.0, 2.0)
        for i in it:
            out_frames[i] = rend.render(frames[i], tracks[i], delta[i])
        timings["render"] = time.perf_counter() - t

        t = time.perf_counter()
        src_audio = audio if audio is not None else (video if has_audio(video) else None)
        out_file = write_video(out, out_frames, fps, src_audio)
        timings["encode"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - t_all
    res = EditResult(
        out_file,
        fps,
        len(frames),
        neutral_codes,
        offsets,
        edited,
        codes.lips,
        codes.pose,
        timings,
        desc,
        tracks,
    )
    if codes_out is not None:
        p = Path(codes_out)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps(res.codes_json()))
        res.codes_path = p
    return res


#: AUs whose fields move the lip vertices (the speech lip track lives there; AU9 lifts the upper lip)
LIP_AUS = (
    "AU9",
    "AU10",
    "AU12",
    "AU14",
    "AU15",
    "AU16",
    "AU17",
    "AU20",
    "AU23",
    "AU24",
    "AU26_emo",
    "R12",
    "R14",
)


#: AUs that part the lips without the jaw (upper lip up, lower lip down): on video they take
#: ``face.video_lip_gain`` instead of the render gain (the opened mouth must stay trackable)
LIP_OPENING_AUS = ("AU10", "AU16")


def hold_lip_offsets(offsets: np.ndarray, fps: float, window_s: float = 4.0) -> np.ndarray:
    """Hold the emotional mouth shape: [T, D_EXPR] offsets -> [T, D_EXPR], the :data:`LIP_AUS`
    columns replaced by their running mean over ``window_s`` (a constant for clips shorter than
    the window; 0 = unchanged).

    The model's per-chunk prediction wobbles (std ~0.1-0.15 of apex over a neutral clip); on the
    lip AUs that wobble is lip motion the speech did not make and it lowers the output's
    mouth-opening correlation with the input. A near-constant offset shifts the lip track and keeps
    its shape; an emotion that changes along a speech-driven target still follows at > window_s.
    """
    from scipy.ndimage import uniform_filter1d

    from cmet.face.facs import AU_NAMES

    off = np.array(offsets, np.float32, copy=True)
    k = int(round(window_s * fps))
    if k < 2 or len(off) < 2:
        return off
    cols = [AU_NAMES.index(a) for a in LIP_AUS]
    if k >= len(off):
        off[:, cols] = off[:, cols].mean(0, keepdims=True)
    else:
        off[:, cols] = uniform_filter1d(off[:, cols], size=k, axis=0, mode="nearest")
    return off


def slow_expression(au: np.ndarray, fps: float, window_s: float = 1.0) -> np.ndarray:
    """Running median of AU codes over ``window_s`` [T, D] -> [T, D].

    Expressions change slowly; articulation (4-8 syllables a second) is fast. What a 1-s median
    removes from the mouth AUs is speech lip shape that leaked past the jaw/lips separation; it
    stays in the video's own lips (the renderer never touches it) and out of the model's input.
    """
    from scipy.ndimage import median_filter

    k = max(1, int(round(window_s * fps)) | 1)
    if len(au) < 3 or k == 1:
        return np.asarray(au, np.float32)
    return median_filter(np.asarray(au, np.float32), size=(min(k, len(au) | 1), 1), mode="nearest")


def _face_cfg(cfg) -> dict:
    if cfg is None:
        try:
            from cmet.config import compose

            cfg = compose([])
        except Exception:
            return {}
    from omegaconf import OmegaConf

    face = cfg.get("face") if hasattr(cfg, "get") else None
    return OmegaConf.to_container(face, resolve=True) if face is not None else {}


# ---------------------------------------------------------------------------------------- checks
def check_edit(video, result: EditResult, emotion: str | None = None, judge=None) -> dict:
    """Measure an edit: mouth-opening correlation input vs output (landmarks re-run on the output),
    frame count/fps/audio of the output, and the FER judge's share of frames with the target
    (fixed Haar box from the first unedited frame) against the unedited video's share."""
    from cmet.face.judge import EMOTION_TO_LABEL, Judge
    from cmet.face.landmarks import FaceMesh, mouth_opening

    frames_in, fps_in = read_video(video)
    frames_out, fps_out = read_video(result.out_path)
    fm = FaceMesh()
    mo_in = mouth_opening(result.landmarks)
    mo_out = mouth_opening(fm.track(frames_out, name=str(result.out_path)))
    n = min(len(mo_in), len(mo_out))
    res = {
        "n_frames_in": len(frames_in),
        "n_frames_out": len(frames_out),
        "fps_in": fps_in,
        "fps_out": fps_out,
        "audio_out": has_audio(result.out_path),
        "mouth_corr": float(np.corrcoef(mo_in[:n], mo_out[:n])[0, 1]),
    }
    if emotion is not None and emotion in EMOTION_TO_LABEL:
        judge = judge or Judge()
        box = judge.face_box(frames_in[0], str(video))
        v_out = judge(frames_out, box=box)
        v_in = judge(frames_in[: len(frames_out)], box=box)
        lab = EMOTION_TO_LABEL[emotion]
        res["judge_share_target"] = float(np.mean([x == lab for x in v_out.top1]))
        res["judge_share_target_unedited"] = float(np.mean([x == lab for x in v_in.top1]))
        res["mean_p_target"] = float(v_out.p(emotion).mean())
        res["rise_p_target"] = float(v_out.p(emotion).mean() - v_in.p(emotion).mean())
        res["judge_top1_counts"] = {k: v_out.top1.count(k) for k in sorted(set(v_out.top1))}
    return res
