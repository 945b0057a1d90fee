"""make_renderer: the one constructor of a renderer from the face config (video and portrait settings)."""

from __future__ import annotations

import numpy as np
import pytest

from cmet.errors import ConfigError
from cmet.face.facs import AU_NAMES, D_EXPR, prototype


@pytest.fixture(scope="module")
def can(astronaut_landmarks):
    from cmet.face.expression import canonical

    return canonical(astronaut_landmarks)


def _gain(r, au: str) -> float:
    return float(r.gains[AU_NAMES.index(au)])


def test_video_settings_come_from_the_face_config(compose_cfg, can, astronaut_face):
    from cmet.face.render import LIP_OPENING_AUS, make_renderer

    face = compose_cfg().face
    r = make_renderer(face, can, astronaut_face.shape[:2], video=True)
    assert _gain(r, "AU26_emo") == pytest.approx(float(face.video_jaw_gain))
    for au in LIP_OPENING_AUS:
        assert _gain(r, au) == pytest.approx(float(face.video_lip_gain))
    assert _gain(r, "AU12") == pytest.approx(float(face.render_gain))
    assert r.shading_strength == pytest.approx(float(face.shading))
    # an override replaces one config value and nothing else
    r2 = make_renderer(face, can, astronaut_face.shape[:2], video=True, render_gain=1.0, shading=0.0)
    assert _gain(r2, "AU12") == 1.0 and r2.shading_strength == 0.0
    assert _gain(r2, "AU26_emo") == pytest.approx(float(face.video_jaw_gain))


def test_portrait_settings_and_plain_renderer(compose_cfg, can, astronaut_face, astronaut_landmarks):
    from cmet.face.render import FaceRenderer, make_renderer

    face = compose_cfg().face
    still = make_renderer(face, can, astronaut_face.shape[:2])
    assert np.allclose(still.gains, float(face.render_gain))  # a portrait has no lip track to keep
    plain = make_renderer(None, can, astronaut_face.shape[:2])
    assert np.allclose(plain.gains, 1.0) and plain.shading_strength == 1.0
    code = prototype("surprised")
    same = FaceRenderer(can, astronaut_face.shape[:2], gain=1.6, jaw_gain=1.6)
    ours = make_renderer(None, can, astronaut_face.shape[:2], render_gain=1.6)
    assert np.array_equal(
        ours.render(astronaut_face, astronaut_landmarks, code),
        same.render(astronaut_face, astronaut_landmarks, code),
    )
    assert not np.array_equal(
        ours.render(astronaut_face, astronaut_landmarks, code), astronaut_face
    ) and code.shape == (D_EXPR,)


def test_bad_settings_are_config_errors(can, astronaut_face):
    from cmet.face.render import make_renderer

    with pytest.raises(ConfigError, match="unknown setting"):
        make_renderer(None, can, astronaut_face.shape[:2], gain=2.0)
    with pytest.raises(ConfigError, match="video_jaw_gain"):
        make_renderer({"render_gain": 1.6}, can, astronaut_face.shape[:2], video=True)
