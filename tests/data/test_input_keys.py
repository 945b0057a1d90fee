"""The data's key is a hash of its inputs (config, source files, code), never of the float arrays built
from them: the same inputs key the same caches and run folders on any CPU, other inputs never share one."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from cmet.data import build_feature_set, input_files, input_hash
from cmet.data.features import FeatureSet


def _as_if_another_cpu(fs: FeatureSet) -> FeatureSet:
    """The same FeatureSet with every computed array moved by one float32 ulp (what another CPU's
    SIMD / FMA kernels do to a filtered envelope), the stored speech vectors as they are."""
    up = lambda a: np.nextafter(a, np.float32(np.inf)).astype(np.float32)  # noqa: E731
    return FeatureSet(fs.clips, fs.speech, up(fs.expr), up(fs.lips), up(fs.pose), dict(fs.meta))


@pytest.fixture
def vendored_cfg(compose_cfg, tmp_path):
    return compose_cfg("data=release_au", f"data.release_dir={tmp_path}/absent")


def test_another_cpus_floats_key_the_same_data_and_run(vendored_cfg, tmp_path):
    from cmet.train import _features

    fs = build_feature_set(vendored_cfg)
    other = _as_if_another_cpu(fs)
    assert other.content_hash() != fs.content_hash()  # the floats differ in their last bit ...
    assert other.key() == fs.key() == fs.meta["input_hash"] == input_hash(vendored_cfg)  # ... the key not
    # `cmet train`'s run folder: the same one, and resuming it there is not refused as "other features"
    _, key_a, run_a = _features(vendored_cfg, fs, None)
    _, key_b, run_b = _features(vendored_cfg, other, None)  # train.resume is on by default
    assert (key_a, run_a) == (key_b, run_b) and (run_a / "data_hash.txt").read_text() == fs.key()
    again = FeatureSet.load(fs.save(tmp_path / "fs"))
    assert again.key() == fs.key()  # it travels with the saved folder (the pipeline's trials read that)


def test_a_featureset_without_inputs_is_keyed_by_its_arrays(vendored_cfg):
    fs = build_feature_set(vendored_cfg)
    meta = {k: v for k, v in fs.meta.items() if k != "input_hash"}
    bare = FeatureSet(fs.clips, fs.speech, fs.expr, fs.lips, fs.pose, meta)
    assert bare.key() == bare.content_hash() != _as_if_another_cpu(bare).key()


def test_vendored_inputs_are_the_vendored_files(vendored_cfg):
    names = [n for n, _ in input_files(vendored_cfg)]
    assert names == ["vendored/cmet_release_e2v.npz", "vendored/cmet_release_clips.csv"]


def _tiny_release(root):
    """A release folder in the authors' layout: two MEAD clips with their emotion2vec feature files."""
    import soundfile as sf

    for emo, name in (("happy", "W009_level_3_001"), ("neutral", "W009_001")):
        d = root / "audios" / "MEAD" / emo
        (d / "emotion2vec+large_features").mkdir(parents=True)
        sf.write(d / f"{name}.wav", np.zeros(1600, np.float32), 16000)
        np.save(d / "emotion2vec+large_features" / f"{name}.npy", np.ones(1024, np.float32))
    return root


def test_release_inputs_key_by_content_not_place(compose_cfg, tmp_path):
    rel = _tiny_release(tmp_path / "a" / "cmet_release")
    cfg = lambda root: compose_cfg(  # noqa: E731
        "data=release_au", f"data.release_dir={root}", "data.vectors=release", "data.include_extended=false"
    )
    names = [n for n, _ in input_files(cfg(rel))]
    assert names == sorted(names) and "release/audios/MEAD/happy/W009_level_3_001.wav" in names
    assert "release/audios/MEAD/happy/emotion2vec+large_features/W009_level_3_001.npy" in names
    key = input_hash(cfg(rel))
    moved = shutil.copytree(rel, tmp_path / "elsewhere" / "cmet_release")
    assert input_hash(cfg(moved)) == key  # the same files in another folder (a colleague's clone)
    np.save(moved / "audios/MEAD/happy/emotion2vec+large_features/W009_level_3_001.npy", np.zeros(1024, "f4"))
    assert input_hash(cfg(moved)) != key  # another feature file: other data
    assert (
        input_hash(compose_cfg("data=release_au", f"data.release_dir={tmp_path}/absent")) != key
    )  # vendored
