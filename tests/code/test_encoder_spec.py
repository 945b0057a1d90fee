"""The bundle names its speech encoder: a model trained on each FeatureSet source records the source's
EncoderSpec in bundle.json, and cmet.audio.encoder_for_bundle gives that encoder (or the one documented
ModelError) -- nobody guesses."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cmet.errors import ModelError

#: a few training steps of a small connector: enough for a real bundle.json
TINY_MODEL = [
    "model.d_model=16",
    "model.n_layers=1",
    "model.n_heads=2",
    "model.ff_dim=32",
    "model.conv_channels=4",
    "model.dropout=0.0",
    "train.batch_size=8",
    "train.steps=3",
    "train.warmup_steps=1",
    "train.eval_every=100",
    "train.checkpoint_every=100",
    "train.quiet=true",
    "train.num_threads=1",
    "train.final_eval=false",
    "device=cpu",
]
SIMULATOR = [
    "data.identities={train: 2, val: 1, test: 1}",
    "data.clips_per_cell=3",
    "data.frames=[20, 30]",
    "data.sentences=6",
    "data.extended={}",
]
GENERATED = [
    "data=generated",
    "data.identities.train=1",
    "data.identities.val=1",
    "data.identities.test=1",
    "data.levels=[1,3]",
    "data.clips_per_cell=3",
    "data.neutral_clips=3",
    "data.extended_clips=1",
    "data.emotions=[angry,happy,neutral,sad]",
    "~data.extended",
    "+data.extended={sarcastic: {angry: 0.5, happy: 0.5}}",
]


def _train(tmp_path_factory, name: str, data: list[str]):
    """(bundle folder, loaded ModelBundle) of a few steps on ``data``."""
    from cmet.config import compose
    from cmet.model.bundle import ModelBundle
    from cmet.train import train

    work = tmp_path_factory.mktemp(name)
    out_dir = [f"data.out_dir={work}/data"] if "data=generated" in data else []
    cfg = compose([f"paths.work_dir={work}", *data, *out_dir, *TINY_MODEL])
    folder = Path(train(cfg, out_dir=work / "run")["bundle_dir"])
    return folder, ModelBundle.load(folder)


def _recorded(folder) -> dict:
    return json.loads((folder / "bundle.json").read_text())["speech_encoder"]


def test_simulator_bundle_names_simulated_and_refuses_speech(tmp_path_factory):
    from cmet.audio import EncoderSpec, encoder_for_bundle

    folder, b = _train(tmp_path_factory, "sim", SIMULATOR)
    assert _recorded(folder) == {"name": "simulated", "dim": b.d_speech, "config": {}}
    assert b.speech_encoder == EncoderSpec("simulated", b.d_speech, {})
    with pytest.raises(ModelError, match=rf"simulated speech features \({b.d_speech}-d\).*\.npy features"):
        encoder_for_bundle(b)


@pytest.mark.slow
def test_generated_bundle_names_its_prosody_encoder(tmp_path_factory):
    """The generated set (audio + prosody encoder): the spec rebuilds the very encoder."""
    from cmet.audio import encoder_for_bundle

    folder, b = _train(tmp_path_factory, "gen", GENERATED)
    spec = _recorded(folder)
    assert spec["name"].startswith("prosody") and spec["dim"] == b.d_speech
    assert spec["config"]["encoder"] == "prosody"
    enc = encoder_for_bundle(b)
    assert enc.name == spec["name"] and enc.dim == b.d_speech
    wav = sorted((folder.parents[1] / "data").rglob("*.wav"))[0]
    assert enc.encode_files([wav]).shape == (1, b.d_speech)


def test_prosody_spec_rebuilds_and_a_drifted_one_is_refused(tmp_path):
    """Without generating a set: a prosody spec as extract_features writes it resolves to that encoder;
    a spec whose name the installed encoder no longer gives is one ModelError."""
    from cmet.audio.encoders import get_encoder
    from cmet.audio.spec import EncoderSpec, encoder_for_spec, spec_of

    config = {"encoder": "prosody", "progress": False}
    enc = get_encoder(config)
    spec = spec_of(enc, enc.dim, config)
    assert EncoderSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec
    assert encoder_for_spec(spec).name == enc.name
    with pytest.raises(ModelError, match=r"'prosody-v0' \(94-d\)|'prosody-v0'"):
        encoder_for_spec(EncoderSpec("prosody-v0", enc.dim, config))
    with pytest.raises(ModelError, match="cannot be built here"):
        encoder_for_spec(EncoderSpec("hf-x", 768, {"encoder": "hf", "model_dir": str(tmp_path / "none")}))


def test_release_au_bundle_names_emotion2vec_and_reads_its_vectors(tmp_path_factory, tmp_path):
    """data=release_au (the release folder or the vendored vectors): emotion2vec+large, 1024-d,
    precomputed; the encoder reads .npy vectors and the authors' layout, and says what to pass else."""
    from cmet.audio import encoder_for_bundle

    folder, b = _train(tmp_path_factory, "rel", ["data=release_au"])
    spec = _recorded(folder)
    assert (spec["name"], spec["dim"], spec["config"]["source"]) == ("emotion2vec+large", 1024, "precomputed")
    enc = encoder_for_bundle(b)
    vec = np.random.default_rng(0).normal(size=1024).astype(np.float32)
    np.save(tmp_path / "a.npy", vec)
    (tmp_path / "emotion2vec+large_features").mkdir()
    np.save(tmp_path / "emotion2vec+large_features" / "clip.npy", vec[None] * 2)
    (tmp_path / "clip.wav").write_bytes(b"RIFF")  # never decoded: its vector lies beside it
    (tmp_path / "other.wav").write_bytes(b"RIFF")
    got = enc.encode_files([tmp_path / "a.npy", tmp_path / "clip.wav"])
    assert got.shape == (2, 1024) and np.array_equal(got[1], vec * 2)
    with pytest.raises(ModelError, match=r"other.wav.*emotion2vec\+large.*1024.*\.npy"):
        enc.encode_files([tmp_path / "other.wav"])


def test_a_bundle_without_a_spec_is_told_to_retrain(tmp_path_factory):
    from cmet.audio import encoder_for_bundle

    folder, b = _train(tmp_path_factory, "old", SIMULATOR)
    b.meta.pop("speech_encoder")
    with pytest.raises(ModelError, match="does not record its speech encoder.*retrain"):
        encoder_for_bundle(b)
    b.meta["speech_encoder"] = "simulated"  # what bundles wrote before the spec
    with pytest.raises(ModelError, match="retrain"):
        _ = b.speech_encoder
