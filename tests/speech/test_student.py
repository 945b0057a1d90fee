"""The student of emotion2vec+large: inputs, training, weights round trip, the encoder interface."""

from __future__ import annotations

import numpy as np
import pytest

from cmet.audio import get_encoder, student
from cmet.errors import ModelError


def test_student_inputs_are_fixed_size_and_deterministic(tone):
    a, b = student.describe(tone(140, dur=0.7)), student.describe(tone(280, dur=1.3))
    assert a.shape == b.shape == (94 + 4 * student.N_MELS,) and np.isfinite(a).all()
    assert np.array_equal(a, student.describe(tone(140, dur=0.7)))
    assert not np.allclose(a, b)


def test_student_learns_a_mapping_and_round_trips(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 12)).astype(np.float32)
    w_true = rng.normal(size=(12, 32)).astype(np.float32)
    y = x @ w_true + 0.01 * rng.normal(size=(120, 32)).astype(np.float32)
    w = student.train_student(x[:100], y[:100], hidden=64, steps=600, seed=0)
    p = w.predict(x[100:])
    cos = (p * y[100:]).sum(1) / np.linalg.norm(p, axis=1) / np.linalg.norm(y[100:], axis=1)
    assert p.shape == (20, 32) and cos.mean() > 0.8
    path = w.save(tmp_path / "s.safetensors", {"steps": 600})
    w2 = student.StudentWeights.load(path)
    assert np.array_equal(w2.predict(x[100:]), p)
    assert student.train_student(x[:100], y[:100], hidden=64, steps=50, seed=3).predict(x[:2]).tobytes() == (
        student.train_student(x[:100], y[:100], hidden=64, steps=50, seed=3).predict(x[:2]).tobytes()
    )


def test_student_encoder_from_a_weights_file(tmp_path, tone):
    feats = np.stack([student.describe(tone(f, dur=0.6)) for f in (120, 180, 240, 300)])
    w = student.train_student(feats, np.eye(4, 8, dtype=np.float32), hidden=8, steps=20)
    w.save(tmp_path / "w.safetensors")
    enc = get_encoder({"encoder": "e2v_student", "student_weights": str(tmp_path / "w.safetensors")})
    out = enc.encode([tone(150, dur=0.5), tone(260, dur=0.9)])
    assert out.shape == (2, 8) and enc.dim == 8 and enc.name == "e2v-student"
    with pytest.raises(ModelError, match="weights not found"):
        get_encoder({"encoder": "e2v_student", "student_weights": str(tmp_path / "none.safetensors")})
