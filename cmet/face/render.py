"""The renderer: a frame + its landmarks + an AU code change -> the edited frame.

1. Target landmarks (:func:`cmet.face.expression.target_landmarks`): the frame's own landmarks
   (so its lips, pose and expression stay) moved by the AU displacement fields in the face's pose.
2. Piecewise-affine mesh warp (:mod:`cmet.face.warp`): the 468 vertices plus a fixed ring around
   the face and the image border, every target pixel mapped back through its triangle. The target
   mesh is kept one-to-one first (:class:`cmet.face.warp.Unfolder`: a displacement that would fold
   a triangle over its neighbours, drawing a hard edge, spreads into the skin around it; each brow
   moves as one piece; only a lowered brow may hood the lid).
   The frame is read once through the composed inverse map, at its own resolution, with a bicubic
   kernel (:mod:`cmet.face.compose`), however small the working crop.
3. What a warp cannot do: the mouth interior, rigid (:mod:`cmet.face.interior`: the person's own
   teeth, from this frame or the bank of their open-mouth frames, else the shaded model of
   :mod:`cmet.face.mouth`), and shading where the muscles bunch (:mod:`cmet.face.shading`).

:func:`make_renderer` builds the renderer of one identity from the face config; callers depend on
the :class:`Renderer` protocol.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

import numpy as np

from cmet.errors import ConfigError
from cmet.face.compose import View, frame_maps, sample
from cmet.face.expression import Canonical, target_landmarks
from cmet.face.facs import AU_NAMES
from cmet.face.interior import MOVED_FULL, Donor, compose_interior, inner_box
from cmet.face.mouth import lip_colour, mouth_model, signed_gap, teeth_colour
from cmet.face.mouth_bank import MouthBank
from cmet.face.rigid import BROW_HOOD, BROW_PAIRS, has_eyeglasses, vertex_weights
from cmet.face.shading import apply_shading, nonzero_box, shading
from cmet.face.warp import Unfolder, control_points, inverse_map, triangulate

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
#: the source's own opening / the target's: below the first the interior comes from the bank (or the
#: mouth model), above the second from the source frame itself, cross-faded between
OWN_COVER = (0.15, 0.35)
#: the bank's moments blended into an interior (the nearest in lip shape), the second only while its
#: shape is within this factor of the nearest's distance (two unlike mouths blended show double teeth)
BANK_NEAREST = 2
BANK_ALIKE = 1.25
#: a mouth widened (or opened past TALLER) by up to this (IOD; ~5 % of its width) keeps the warp's
#: interior: a stretch that small does not show, a rigid interior would only redraw it
UNSEEN = 0.03
#: an opening up to this many times the source's keeps the warp's interior (teeth a little taller
#: read as teeth; the rigid interior takes over as the jaw drops past it)
TALLER = 1.5
#: a target opening (IOD) under this gets a proportionally fainter new interior (a slit shows little)
OPEN_MIN = 0.02
#: shading under this (a share of the level: ~half a grey level) is not applied at the frame's size
SHADE_FLOOR = 0.002
#: a video renderer's displacement EMA weight on the previous frame (see FaceRenderer)
VIDEO_TEMPORAL = 0.5
#: a video renderer's first guess of a frame's fold correction: the previous frame's times this (it
#: fades over ~20 frames; 0.8: surprised flicker 1.14, 0.95: 1.11, on the input's face mask)
UNFOLD_WARM = 0.95


class FaceRenderer:
    """Renders AU code changes onto the frames of one identity (fixed triangulation).

    It learns the person from the frames it is given: with a ``mouth_bank`` every source frame
    whose mouth is open is offered to it (:meth:`cmet.face.mouth_bank.MouthBank.offer`); an edited
    mouth shows the source frame's own teeth read rigidly, or where the source opens less than the
    edit, the bank's (:meth:`_interior`), else the shaded mouth model; eyeglasses are looked for on the first frame
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
        view: View | None = None,
    ):
        """frame [H, W, 3] uint8 + its landmarks [468, 3] + AU change [D_EXPR] -> [H, W, 3] uint8.

        ``view``: where ``frame`` (the working image: a face crop) sits in the frame it was cut from;
        the edit is then written into ``view.frame`` at that frame's own resolution, each of its pixels
        read once (:mod:`cmet.face.compose`), and ``view.frame`` is returned. None: the edit of
        ``frame`` itself (a new array). The target landmarks are in working pixels either way."""
        if self.weights is None:  # the first frame decides: eyeglass frames on the face?
            glasses = has_eyeglasses(frame[None], landmarks[None])
            self.weights = vertex_weights(self.can.neutral_px, glasses)[:, None]
        v = View(frame.copy()) if view is None else view
        src_lm, delta, tgt, src_c, dst_c = self._geometry(landmarks, delta_au, jaw, frame.shape[:2])
        s_n, t_n = (src_lm, tgt) if v.identity else (v.to_frame(src_lm), v.to_frame(tgt))
        if self.mouth_bank is not None:
            self.mouth_bank.offer(v.frame, s_n)
        amount = self._interior_amount(s_n, t_n)
        # the source's own mouth, read before the warp writes over it (only where it will be used)
        own = Donor.cut(v.frame, s_n) if amount > 0 else None
        inv = inverse_map(src_c, dst_c, self.tris, frame.shape[:2])
        if inv is not None:
            maps = frame_maps(v, *inv[1:], inv[0])
            if maps is not None:
                (x0, y0, x1, y1), MX, MY, W = maps
                v.frame[y0:y1, x0:x1] = sample(v.frame, MX, MY, cubic_weight=W)
        au = {k: float(x) for k, x in zip(AU_NAMES, delta, strict=True)}
        if amount > 0:
            self._interior(v.frame, s_n, t_n, own, au, amount)
        if self.shading_strength > 0:
            iod = float(np.linalg.norm(tgt[263, :2] - tgt[33, :2]))
            dark, light = shading(frame.shape[:2], tgt[:, :2], iod, au, self.shading_strength)
            shade_into(v, dark, light)
        return (v.frame, tgt) if return_landmarks else v.frame

    def _geometry(self, landmarks: np.ndarray, delta_au: np.ndarray, jaw: float, shape: tuple[int, int]):
        """The edit's geometry in working pixels: (source landmarks [468, 3], the AU change with its
        gains [D_EXPR], target landmarks [468, 3], source and target control points [N, 2])."""
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
        src_c = control_points(landmarks[:, :2], shape, RING)
        dst_c = control_points(tgt[:, :2], shape, RING)
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
        return np.asarray(landmarks, np.float32), delta, tgt, src_c, dst_c

    @staticmethod
    def _interior_amount(s_n: np.ndarray, t_n: np.ndarray) -> float:
        """How much of the target inner-lip polygon is composed anew (0..1), from source / target
        landmarks s_n / t_n [468, >=2] (frame pixels). The warp scales what the source shows between
        the lips where the edit widens, narrows or opens the mouth: there the interior is composed
        (rigid teeth); a change under UNSEEN keeps the warp's interior, a slit (OPEN_MIN) shows little."""
        iod = float(np.linalg.norm(t_n[263, :2] - t_n[33, :2]))
        gap_t, gap_s = signed_gap(t_n), signed_gap(s_n)
        if gap_t <= 1.0:
            return 0.0
        width = lambda p: float(np.linalg.norm(p[308, :2] - p[78, :2]))  # noqa: E731
        grown = max(abs(width(t_n) - width(s_n)), gap_t - TALLER * max(gap_s, 0.0)) / iod
        return float(np.clip((grown - UNSEEN) / MOVED_FULL, 0, 1) * np.clip(gap_t / iod / OPEN_MIN, 0, 1))

    def _interior(
        self, img: np.ndarray, s_n: np.ndarray, t_n: np.ndarray, own, au: dict[str, float], amount: float
    ):
        """The target inner-lip polygon painted from the person's own mouth with weight ``amount`` (in
        place, frame pixels: source / target landmarks s_n / t_n [468, >=2]): this frame's own teeth
        read rigidly where its mouth is open enough (:data:`OWN_COVER`), else the bank's nearest
        mouths, else the mouth model."""
        iod = float(np.linalg.norm(t_n[263, :2] - t_n[33, :2]))
        gap_t, gap_s = signed_gap(t_n), signed_gap(s_n)
        cover = gap_s / gap_t
        w_own = (
            0.0
            if own is None
            else float(np.clip((cover - OWN_COVER[0]) / (OWN_COVER[1] - OWN_COVER[0]), 0, 1))
        )
        donors = [(own, w_own)] if w_own > 0 else []
        rest, fallback = 1.0 - w_own, None
        if rest > 0 and self.mouth_bank is not None and len(self.mouth_bank):
            near = self.mouth_bank.nearest(t_n, BANK_NEAREST)
            near = [(i, d) for i, d in near if d <= BANK_ALIKE * near[0][1] + 1e-3]
            w = np.array([1.0 / (d + 0.01) ** 2 for _, d in near])
            donors += [
                (self.mouth_bank.donor(i), rest * float(x))
                for (i, _), x in zip(near, w / w.sum(), strict=True)
            ]
        elif rest > 0:
            box = inner_box(t_n, img.shape[:2])
            if box is not None:
                x0, y0, x1, y1 = box
                q = t_n[:, :2] - [x0, y0]
                fallback = mouth_model(
                    (y1 - y0, x1 - x0), q, iod, au, lip_colour(img, t_n), teeth_colour(img, t_n)
                )
        donors.sort(key=lambda dw: -dw[1])
        bank = self.mouth_bank
        cavity, grain = (None, None) if bank is None else (bank.cavity, bank.grain)
        compose_interior(
            img, t_n, donors, amount, fallback, rest if fallback is not None else 0.0, cavity, grain
        )


def shade_into(view: View, dark: np.ndarray, light: np.ndarray) -> None:
    """Working-size shading maps ([S, S] each, :func:`cmet.face.shading.shading`) applied to the
    view's frame at its own resolution (the maps are smooth: read bilinearly), in place; a change
    under half a grey level (:data:`SHADE_FLOOR`) is not worth a frame pixel's arithmetic."""
    import cv2

    if view.identity:
        view.frame[...] = apply_shading(view.frame, dark, light)
        return
    box = nonzero_box(((dark > SHADE_FLOOR) | (light > SHADE_FLOOR)).astype(np.uint8))
    if box is None:
        return
    fbox = view.frame_box(box)
    if fbox is None:
        return
    x0, y0, x1, y1 = box
    # f (1 - dark) + light (255 - f (1 - dark)) = f (1 - dark) (1 - light) + 255 light
    gain = (1 - dark[y0:y1, x0:x1]) * (1 - light[y0:y1, x0:x1])
    dl = view.upsample(np.dstack([gain, 255 * light[y0:y1, x0:x1]]), box, fbox)
    fx0, fy0, fx1, fy1 = fbox
    roi = view.frame[fy0:fy1, fx0:fx1]
    f = cv2.multiply(roi, cv2.merge([dl[..., 0]] * 3), dtype=cv2.CV_32F)
    cv2.add(f, cv2.merge([dl[..., 1]] * 3), dst=f)
    roi[...] = cv2.convertScaleAbs(f)


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
