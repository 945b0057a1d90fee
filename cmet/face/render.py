"""The renderer: a frame + its landmarks + an AU code change -> the edited frame.

1. Target landmarks (:func:`cmet.face.expression.target_landmarks`): the frame's own landmarks
   (so its lips, pose and expression stay) moved by the AU displacement fields in the face's pose.
2. Piecewise-affine mesh warp (:mod:`cmet.face.warp`): the 468 vertices plus a fixed ring around
   the face and the image border, every target pixel mapped back through its triangle. The target
   mesh is kept one-to-one first (:class:`cmet.face.warp.Unfolder`: a displacement that would fold
   a triangle over its neighbours, drawing a hard edge, spreads into the skin around it; each brow
   moves as one piece; only a lowered brow may hood the lid).
3. What a warp cannot do, painted in target coordinates: a mouth interior where the mouth opens
   more than in the source (:mod:`cmet.face.mouth`) and shading where the muscles bunch
   (:mod:`cmet.face.shading`).

:func:`make_renderer` builds the renderer of one identity from the face config; callers depend on
the :class:`Renderer` protocol.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

import numpy as np

from cmet.errors import ConfigError
from cmet.face.expression import Canonical, target_landmarks
from cmet.face.facs import AU_NAMES
from cmet.face.mouth import mouth_interior, signed_gap
from cmet.face.mouth_bank import MouthBank
from cmet.face.rigid import BROW_HOOD, BROW_PAIRS, has_eyeglasses, vertex_weights
from cmet.face.shading import apply_shading, shading
from cmet.face.warp import Unfolder, control_points, triangulate, warp

#: AUs whose fields are not scaled past their apex by the render gain: the emotional jaw drop
#: (0.25 IOD at apex is already wide; more breaks the lip track and reads as shouting = angry)
JAW_AUS = ("AU26_emo",)
#: AUs that part the lips without the jaw (upper lip up, lower lip down): on video they take
#: ``face.video_lip_gain`` instead of the render gain (the opened mouth must stay trackable)
LIP_OPENING_AUS = ("AU10", "AU16")
#: the fixed control ring around the face oval (scale about the face centre): the warp fades out
#: between the oval and the ring, so hair, ears and background do not move with an expression
#: close (1.1) around the upper half (forehead, temples: hair and ears), wider (1.4) around the
#: jaw, which an open mouth moves down
RING = np.where(np.isin(np.arange(36), np.r_[0:9, 28:36]), 1.1, 1.4)
#: the person's own interior is blended in fully from this much extra opening (IOD)
BANK_RAMP = 0.03
#: a source mouth open this wide (IOD) already shows the person's own interior (teeth, tongue),
#: which the warp stretches into the edited mouth: a new interior (a bank entry, the mouth model)
#: fades out as the source opens, so another moment's teeth or a model are not painted over the
#: teeth this frame shows (FaceRenderer(open_shown=...))
OPEN_SHOWN = 0.08
#: ... unless the edit adds this many times the source's opening (blended in from the first, fully
#: at the second): the new gap between the teeth is a cavity, not the teeth stretched tall
NEW_PAST = (1.0, 2.0)
#: a video renderer's displacement EMA weight on the previous frame (see FaceRenderer)
VIDEO_TEMPORAL = 0.5
#: a video renderer's first guess of a frame's fold correction: the previous frame's times this (it
#: fades over ~20 frames; 0.8: surprised flicker 1.14, 0.95: 1.11, on the input's face mask)
UNFOLD_WARM = 0.95


class FaceRenderer:
    """Renders AU code changes onto the frames of one identity (fixed triangulation).

    It learns the person from the frames it is given: with a ``mouth_bank`` every source frame
    whose mouth is open is offered to it (:meth:`cmet.face.mouth_bank.MouthBank.offer`), and a
    mouth opened wider than its source gets the person's own interior, else the shaded mouth
    model (:func:`cmet.face.mouth.mouth_interior`); eyeglasses are looked for on the first frame
    (``glasses=None``) and, when found, the eye band stays rigid (:func:`cmet.face.rigid.vertex_weights`,
    which also keeps the upper face outline, hair and background still).
    """

    def __init__(
        self,
        can: Canonical,
        shape: tuple[int, int],
        shading_strength: float = 1.0,
        gain: float = 1.0,
        jaw_gain: float | None = None,
        au_gains: dict[str, float] | None = None,
        mouth_bank: MouthBank | None = None,
        glasses: bool | None = None,
        temporal: float = 0.0,
        open_shown: float = OPEN_SHOWN,
    ):
        self.can = can
        self.shape = shape
        ref = control_points(can.neutral_px[:, :2], shape, RING)
        self.tris = triangulate(ref)
        self._ref = ref
        self._brow_pairs = np.asarray(BROW_PAIRS)  # [P, 2] (upper, lower) vertex per brow column
        self._fix: np.ndarray | None = None  # the Unfolder's last correction [N, 2] (video frames)
        self._unfold: Unfolder | None = None  # needs the vertex weights (decided on the first frame)
        #: frames rendered, frames whose AU warp folded a triangle, frames still so after the Unfolder
        self.unfold_stats = {"frames": 0, "folded_warp": 0, "folded_left": 0}
        self.mouth_bank = mouth_bank
        self.open_shown = float(open_shown)
        self.weights = None if glasses is None else vertex_weights(can.neutral_px, glasses)[:, None]
        # frames of a video in order: the displacement is an exponential moving average with this
        # weight on the previous frame's (landmark jitter no longer shakes the warp)
        self.temporal = float(temporal)
        self._prev: np.ndarray | None = None
        self.shading_strength = shading_strength
        self.gain = gain
        # per-AU gain: the JAW_AUS fields get ``jaw_gain`` (default min(gain, 1): on a talking video
        # the lip track must survive; a still portrait has none to keep and may use ``gain``)
        gj = min(gain, 1.0) if jaw_gain is None else jaw_gain
        self.gains = np.array([gj if a in JAW_AUS else gain for a in AU_NAMES], np.float32)
        # explicit per-AU overrides (e.g. the lip-opening AUs on a talking video, cmet.edit)
        for a, g in (au_gains or {}).items():
            if a not in AU_NAMES:
                raise ValueError(f"au_gains: unknown action unit {a!r}; known: {list(AU_NAMES)}")
            self.gains[AU_NAMES.index(a)] = float(g)

    def render(
        self,
        frame: np.ndarray,
        landmarks: np.ndarray,
        delta_au: np.ndarray,
        jaw: float = 0.0,
        return_landmarks: bool = False,
    ):
        """frame [H, W, 3] uint8 + its landmarks [468, 3] + AU change [D_EXPR] -> [H, W, 3] uint8."""
        if self.weights is None:  # the first frame decides: eyeglass frames on the face?
            glasses = has_eyeglasses(frame[None], landmarks[None])
            self.weights = vertex_weights(self.can.neutral_px, glasses)[:, None]
        if self.mouth_bank is not None:
            self.mouth_bank.offer(frame, landmarks)
        delta = np.asarray(delta_au, np.float32) * self.gains
        tgt = target_landmarks(self.can, landmarks, delta, jaw)
        move = tgt - landmarks
        # each brow moves as one piece: its upper and lower edge take their mean displacement (the
        # fields' falloff differs by a few % between them, enough to squeeze the hair at 2 x apex)
        move[self._brow_pairs] = move[self._brow_pairs].mean(1, keepdims=True)
        disp = self.weights * move  # the rigid parts stay with the head (and eyeglass frames)
        if self.temporal > 0 and self._prev is not None:
            disp = (1 - self.temporal) * disp + self.temporal * self._prev
        self._prev = disp
        tgt = landmarks + disp
        src_c = control_points(landmarks[:, :2], frame.shape[:2], RING)
        dst_c = control_points(tgt[:, :2], frame.shape[:2], RING)
        dst_c[468:] = src_c[468:]  # the ring and border stay put
        if self._unfold is None:
            free = np.zeros(len(self._ref))
            free[:468] = self.weights[:, 0] > 0  # not the upper face outline, nor eyeglass frames
            ring = tuple(range(468, len(self._ref)))  # the ring and border: squeezed, never folded
            self._unfold = Unfolder(self.tris, self._ref, free, BROW_PAIRS, BROW_HOOD, ring)
        # no triangle folded over its neighbours; on a video the previous frame's correction
        # (damped) is the first guess: fewer steps, and a correction that changes smoothly
        warm = UNFOLD_WARM * self._fix if self.temporal > 0 and self._fix is not None else None
        raw = dst_c
        dst_c, _ = self._unfold(src_c, raw, warm)
        self._fix = dst_c - raw
        self.unfold_stats["frames"] += 1
        self.unfold_stats["folded_warp"] += int(self._unfold.last[0] > 0)
        self.unfold_stats["folded_left"] += int(self._unfold.last[1] > 0)
        tgt = tgt.copy()
        tgt[:, :2] = dst_c[:468]
        out = warp(frame, src_c, dst_c, self.tris)
        iod = float(np.linalg.norm(tgt[263, :2] - tgt[33, :2]))
        au = {k: float(v) for k, v in zip(AU_NAMES, delta, strict=True)}
        # signed inner-lip gap along the face's down axis: lips pressed past each other (a
        # negative gap) must not count as an opening that paints teeth
        src_open = signed_gap(landmarks) / iod
        dst_open = signed_gap(tgt) / iod
        added = dst_open - src_open
        fresh = float(np.clip(1 - src_open / self.open_shown, 0, 1))
        if src_open > 0:  # an edit that opens the mouth far past the source's (a jaw drop) needs a cavity
            fresh = max(
                fresh, float(np.clip(added / src_open - NEW_PAST[0], 0, 1) / (NEW_PAST[1] - NEW_PAST[0]))
            )
        if self.mouth_bank is not None and len(self.mouth_bank) and added > 0.01:
            out = self.mouth_bank.paste(out, tgt[:, :2], fresh * float(np.clip(added / BANK_RAMP, 0, 1)))
        else:
            out = mouth_interior(out, tgt[:, :2], iod, fresh * added, au)
        if self.shading_strength > 0:
            dark, light = shading(out.shape[:2], tgt[:, :2], iod, au, self.shading_strength)
            out = apply_shading(out, dark, light)
        return (out, tgt) if return_landmarks else out


class Renderer(Protocol):
    """What the edit and the evaluations need of a renderer for one identity."""

    def render(
        self,
        frame: np.ndarray,
        landmarks: np.ndarray,
        delta_au: np.ndarray,
        jaw: float = 0.0,
        return_landmarks: bool = False,
    ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """frame [H, W, 3] uint8 + its landmarks [468, 3] + AU change [D_EXPR] -> [H, W, 3] uint8
        (and the target landmarks [468, 3] with ``return_landmarks``)."""
        ...


#: the face-config fields the renderer reads (``configs/face/default.yaml``)
RENDER_KEYS = ("render_gain", "shading", "video_jaw_gain", "video_lip_gain")


def _setting(face_cfg: Any, overrides: dict[str, float], key: str, needed: bool) -> float | None:
    """``overrides[key]``, else the face config's value; None when neither has it and not ``needed``."""
    if key in overrides:
        return float(overrides[key])
    if face_cfg is not None:
        has = key in face_cfg if isinstance(face_cfg, Mapping) else hasattr(face_cfg, key)
        if has:
            v = face_cfg[key] if isinstance(face_cfg, Mapping) else getattr(face_cfg, key)
            return float(v)
    if needed:
        raise ConfigError(
            f"face config has no {key!r} (the renderer on a video needs {', '.join(RENDER_KEYS)})"
        )
    return None


def make_renderer(
    face_cfg: Any,
    can: Canonical,
    shape: tuple[int, int],
    *,
    video: bool = False,
    **overrides: float,
) -> Renderer:
    """The one way to build a renderer for one identity from the face config.

    ``face_cfg``: the face section of the config (``cfg.face``: ``render_gain``, ``shading``,
    ``video_jaw_gain``, ``video_lip_gain``) or None (the plain renderer: gain 1 = the FACS apex
    fields, full shading). ``overrides``: any of those keys, replacing the config's value.
    ``video``: the settings of a talking video: the emotional jaw drop at ``video_jaw_gain`` and
    the lip-opening AUs (:data:`LIP_OPENING_AUS`) at ``video_lip_gain`` x apex, so the speech lip
    track survives, and the person's open-mouth frames fill a mouth bank as the video is rendered;
    otherwise (a still portrait) every field, jaw included, at ``render_gain``.
    """
    bad = sorted(set(overrides) - set(RENDER_KEYS))
    if bad:
        raise ConfigError(f"make_renderer: unknown setting(s) {bad}; known: {list(RENDER_KEYS)}")
    gain = _setting(face_cfg, overrides, "render_gain", False)
    gain = 1.0 if gain is None else gain
    shading_strength = _setting(face_cfg, overrides, "shading", False)
    shading_strength = 1.0 if shading_strength is None else shading_strength
    if not video:
        return FaceRenderer(can, shape, shading_strength=shading_strength, gain=gain, jaw_gain=gain)
    jaw_gain = _setting(face_cfg, overrides, "video_jaw_gain", True)
    lip_gain = _setting(face_cfg, overrides, "video_lip_gain", True)
    return FaceRenderer(
        can,
        shape,
        shading_strength=shading_strength,
        gain=gain,
        jaw_gain=jaw_gain,
        au_gains=dict.fromkeys(LIP_OPENING_AUS, lip_gain),
        mouth_bank=MouthBank(),
        temporal=VIDEO_TEMPORAL,
    )
