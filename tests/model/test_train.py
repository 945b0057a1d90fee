"""Training: outputs, resume == uninterrupted, and the behavioural sanity checks on the simulator."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from cmet.model.bundle import ModelBundle


def test_run_outputs(tiny_run, tiny_bundle):
    metrics, out, _ = tiny_run
    for k in (
        "acc_emo/cmet",
        "acc_emo/label",
        "acc_emo/speech_direct",
        "acc_emo/reference",
        "acc_emo_ext/cmet",
        "acc_emo_ext/speech_direct",
        "cos/cmet",
        "recon_mse/cmet",
        "acc_emo/cmet/happy",
        "bundle_dir",
        "train_seconds",
        "samples_per_s",
        "val/acc_emo",
        "val/loss",
    ):
        assert k in metrics, k
    assert np.isnan(metrics["acc_emo_ext/label"])  # label-based cannot express extended emotions
    for k in ("acc_emo/cmet", "acc_emo_ext/cmet", "acc_emo_ext/speech_direct", "val/acc_emo"):
        assert 0.0 <= metrics[k] <= 1.0, (k, metrics[k])
    # an extended target is read among all classes (basic + extended): chance is 1/#classes
    chance = 1.0 / len(tiny_bundle.emotions)
    assert metrics["acc_emo_ext/cmet"] > 2 * chance, (metrics["acc_emo_ext/cmet"], chance)
    for f in (
        "metrics.json",
        "confusion_matrix.png",
        "confusion_matrix_ext.png",
        "training_curves.png",
        "bundle/model.safetensors",
        "bundle/bundle.json",
        "bundle/banks.npz",
    ):
        assert (out / f).is_file(), f
    on_disk = json.loads((out / "metrics.json").read_text())
    assert on_disk["acc_emo/cmet"] == pytest.approx(metrics["acc_emo/cmet"])


def test_cmet_beats_speech_direct_on_held_out_identities(tiny_run):
    m = tiny_run[0]
    assert m["acc_emo/cmet"] > m["acc_emo/speech_direct"] + 0.1, (
        m["acc_emo/cmet"],
        m["acc_emo/speech_direct"],
    )
    assert m["acc_emo/cmet"] > 0.4  # chance is 1/7
    assert m["cos/cmet"] > m["cos/speech_direct"]


def test_bundle_roundtrip(tiny_run, tiny_bundle, tiny_features, tmp_path):
    b = tiny_bundle
    assert b.d_expr == tiny_features.d_expr and b.d_speech == tiny_features.d_speech
    assert "neutral" in b.banks and set(b.extended_emotions) == set(tiny_features.extended_emotions)
    assert set(b.baselines) == {"speech_direct", "label"}
    codes = tiny_features.split("test").frames(0)
    before = b.edit_codes(codes, "happy")
    b.save(tmp_path / "again")
    again = ModelBundle.load(tmp_path / "again")
    np.testing.assert_allclose(again.edit_codes(codes, "happy"), before, atol=1e-6)
    assert not list(tmp_path.glob("again/**/*.pkl"))


def _ckpt(out):
    return torch.load(out / "checkpoints" / "cmet_last.pt", weights_only=True)


def test_resume_continues_from_the_checkpoint(tiny_cfg_factory, tiny_features, tmp_path):
    """A run stopped at step 6 continues at step 7: the resumed call evaluates only at step 12 (a
    restart would evaluate at 6 again), ends with the uninterrupted run's weights AND optimiser state."""
    from cmet.train import train

    over = (
        "train.steps=12",
        "train.eval_every=6",
        "train.checkpoint_every=6",
        "train.warmup_steps=2",
        "eval.baselines=[label]",
        "train.final_eval=false",
        "model.dropout=0.1",
    )
    cfg = tiny_cfg_factory(*over)
    seen_a: list[int] = []
    train(cfg, features=tiny_features, out_dir=tmp_path / "a", callback=lambda s, m: seen_a.append(s))
    assert seen_a == [6, 12]

    class Stop(Exception):
        pass

    def stop_at_6(step, metrics):
        assert {"val/acc_emo", "val/loss"} <= set(metrics)
        if step == 6:
            raise Stop

    with pytest.raises(Stop):
        train(cfg, features=tiny_features, out_dir=tmp_path / "b", callback=stop_at_6)
    assert _ckpt(tmp_path / "b")["step"] == 6
    seen_b: list[int] = []
    train(cfg, features=tiny_features, out_dir=tmp_path / "b", callback=lambda s, m: seen_b.append(s))
    assert seen_b == [12], f"the resumed run evaluated at {seen_b}: it did not start from step 6"
    a, b = _ckpt(tmp_path / "a"), _ckpt(tmp_path / "b")
    assert a["step"] == b["step"] == 12
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    # AdamW's step count and moments continued from the checkpoint (a fresh optimiser would count 6)
    sa, sb = a["opt"]["state"], b["opt"]["state"]
    assert sa.keys() == sb.keys()
    for i in sa:
        assert float(sb[i]["step"]) == 12.0
        for k in ("exp_avg", "exp_avg_sq"):
            assert torch.equal(sa[i][k], sb[i][k]), (i, k)
    # the history holds one validation per evaluation step, none repeated
    assert json.loads(b["history"])["val_step"] == [6, 12]
