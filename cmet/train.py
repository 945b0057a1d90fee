"""Training: ``train(cfg, features=None, out_dir=None, callback=None) -> metrics`` (pure: all from cfg).

What one call does:

1. builds the FeatureSet (``cmet.data.build_feature_set``) unless given, validates it;
2. fits the evaluation :class:`~cmet.evaluate.EmotionClassifier` on the training identities;
3. trains the C-MET connector (``speech_input=difference``) and the speech-direct baseline connector
   (``speech_input=direct``) the same way: :class:`~cmet.data.sampling.PairSampler` batches, forward
   pass (ref, a_{i->j}, codes of i) -> v_{i->j} and backward pass (-ref, -a_{i->j}, codes of j) ->
   v_{j->i}; L = L_recon + w_cnt L_cnt + w_dir L_dir (:mod:`cmet.model.losses`); AdamW, linear warm-up
   then cosine decay, gradient clipping; mixed precision (bf16 autocast) only on CUDA;
4. fits the label baseline; builds the emotion banks from the TRAINING split;
5. evaluates everything on the test identities (:func:`cmet.evaluate.evaluate`);
6. writes ``out_dir/bundle/`` (ModelBundle), ``out_dir/metrics.json``, ``confusion_matrix*.png`` and
   ``training_curves.png``.

Faithfulness: the losses, passes, sampling and connector are the spec's; ``train=paper`` gives the
paper's settings (focal MSE, lr 1e-4, batch 128, 200k steps). The CPU default (``train=default``,
600 steps) deviates in two measured, switchable ways (simulator with content_scale=1.0, 400 steps,
batch 64, held-out identities):
``loss.recon=mse`` instead of the focal MSE, whose factor ``2*sigmoid(0.2|d|)-1 ~ 0.1|d|`` makes the
gradient vanish for errors below ~1 at this code scale (Acc_emo 45% focal vs 82% mse), and
``ref_drop=0.5``, which zeroes the reference of half the samples: with the spec's reference (the
previous window's target, zero only in a clip's first T frames) the model mostly learns to copy the
reference and the first, speech-only chunk of autoregressive inference stays weak (82% -> 98%).

Checkpoints (:mod:`cmet.checkpoint`: ``out_dir/checkpoints/<model>_last.pt``, weights, optimiser,
step, sampler and torch RNG states, history) are written every ``cfg.train.checkpoint_every`` steps, at every evaluation and at
the end; with ``cfg.train.resume`` a run continues from them and gives the same result as an
uninterrupted run (on CPU; tested). ``callback(step, metrics)`` is called at each
evaluation (every ``cfg.train.eval_every`` steps) with ``val/acc_emo`` and ``val/loss``; if it raises
(e.g. Optuna pruning), the checkpoint is already saved and the exception propagates.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from pathlib import Path

import numpy as np

from cmet.data.features import NEUTRAL, FeatureSet
from cmet.errors import ConfigError, DataError


def run_dir_for(cfg, data_hash: str = "") -> Path:
    """Default out_dir: ``${paths.runs_dir}/<data.name>-<model.name>-<hash of data/model/train/seed + data content>``.

    ``data_hash`` (``FeatureSet.key()``: the hash of the data's inputs) makes re-encoded or regenerated data
    train afresh instead of resuming a checkpoint trained on other features.
    """
    from omegaconf import OmegaConf

    key = OmegaConf.to_yaml(
        OmegaConf.create({k: cfg.get(k) for k in ("data", "model", "train", "seed")}), resolve=True
    )
    key += data_hash
    h = hashlib.sha256(key.encode()).hexdigest()[:8]
    return Path(cfg.paths.runs_dir) / f"{cfg.data.name}-{cfg.model.name}-{h}"


def seed_everything(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def build_banks(train: FeatureSet) -> dict[str, np.ndarray]:
    """Speech embeddings of every emotion of the training split: {emotion: [n_e, D_a]}."""
    emo = train.clips["emotion"].to_numpy()
    return {e: train.speech[emo == e].astype(np.float32) for e in train.emotions}


def _curves_png(histories: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from cmet.plots import save_figure

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.6))
    for name, h in histories.items():
        if h["step"]:
            a1.plot(h["step"], h["loss"], label=f"{name} train loss")
        if h["val_step"]:
            a1.plot(h["val_step"], h["val/loss"], "--", label=f"{name} val loss")
            a2.plot(h["val_step"], [100 * x for x in h["val/acc_emo"]], "o-", label=name)
    a1.set_yscale("log")
    a1.set_xlabel("step")
    a2.set_xlabel("step")
    a2.set_ylabel("val Acc_emo %")
    for ax in (a1, a2):
        if ax.get_legend_handles_labels()[0]:  # no validation (no val split) -> no curve to label
            ax.legend(fontsize=7)
    save_figure(fig, path, dpi=110)


def _features(cfg, features: FeatureSet | None, out_dir: str | Path | None):
    """The validated FeatureSet, its key (:meth:`FeatureSet.key`) and the run folder (claimed for it)."""
    from cmet.checkpoint import claim_run_dir
    from cmet.data import build_feature_set

    fs = features if features is not None else build_feature_set(cfg)
    fs.validate()
    data_hash = fs.key()
    out = Path(out_dir) if out_dir is not None else run_dir_for(cfg, data_hash)
    claim_run_dir(out, data_hash, bool(cfg.train.resume))
    return fs, data_hash, out


def _train_connectors(
    cfg, fs: FeatureSet, train_fs: FeatureSet, emotions: list[str], classifier, out: Path, device, callback
):
    """C-MET (and the speech-direct baseline when configured), each from ``cfg.seed``, on the train
    split with validation on the val split: ({name: history}, {name: connector}, samples seen)."""
    from cmet.data.sampling import PairSampler
    from cmet.model.connector import Connector
    from cmet.train_loop import make_val_fn, train_connector

    tc, seed = cfg.train, int(cfg.seed)
    val_fs = fs.split("val")
    histories, models, seen = {}, {}, 0
    kinds = [("cmet", False)]
    if "speech_direct" in list(cfg.eval.baselines):
        kinds.append(("speech_direct", True))
    for name, direct in kinds:
        seed_everything(seed)
        model = Connector.from_cfg(
            cfg.model, fs.d_speech, fs.d_expr, "direct" if direct else "difference"
        ).to(device)
        sampler = PairSampler(
            train_fs,
            emotions,
            int(cfg.model.window),
            int(tc.k_clips),
            int(tc.min_clips),
            seed,
            float(tc.ref_drop),
        )
        val_fn = make_val_fn(val_fs, classifier, cfg, emotions, direct, device) if val_fs.n_clips else None
        cb = callback if name == "cmet" else None
        histories[name] = train_connector(
            model,
            sampler,
            cfg,
            device,
            out / "checkpoints" / f"{name}_last.pt",
            direct,
            val_fn,
            cb,
            desc=f"train {name}",
        )
        models[name] = model
        seen += histories[name]["steps_run"] * int(tc.batch_size)
    return histories, models, seen


def _bundle(cfg, fs: FeatureSet, train_fs: FeatureSet, emotions: list[str], models: dict, data_hash: str):
    """The :class:`~cmet.model.bundle.ModelBundle`: C-MET, the baselines, the training split's emotion
    banks and the FeatureSet's speech-encoder spec."""
    from omegaconf import OmegaConf

    from cmet.audio.spec import EncoderSpec
    from cmet.model.baselines import fit_label_offsets
    from cmet.model.bundle import ModelBundle

    baselines: dict = {}
    if "speech_direct" in models:
        baselines["speech_direct"] = models["speech_direct"]
    if "label" in list(cfg.eval.baselines):
        baselines["label"] = fit_label_offsets(train_fs, emotions)
    return ModelBundle(
        connector=models["cmet"],
        model_cfg=OmegaConf.to_container(cfg.model, resolve=True),
        d_speech=fs.d_speech,
        d_expr=fs.d_expr,
        emotions=fs.emotions,
        extended_emotions=fs.extended_emotions,
        banks=build_banks(train_fs),
        baselines=baselines,
        meta=dict(
            speech_encoder=EncoderSpec.from_dict(
                fs.meta.get("speech_encoder"), "the FeatureSet", "its source must set meta['speech_encoder']"
            ).to_dict(),
            data_hash=data_hash,
            data_source=str(cfg.data.source),
            seed=int(cfg.seed),
            steps=int(cfg.train.steps),
        ),
    )


def train(cfg, features: FeatureSet | None = None, out_dir: str | Path | None = None, callback=None) -> dict:
    """Train C-MET + baselines, evaluate on held-out identities; see the module docstring.

    Returns a flat metrics dict: ``acc_emo/{cmet,label,speech_direct,reference,oracle}``, per-emotion
    ``acc_emo/cmet/<emotion>``, ``acc_emo_ext/...``, ``cos/...``, ``recon_mse/...``, ``nn_norm/cmet``,
    ``bundle_dir``, ``out_dir``, ``train_seconds``, ``samples_per_s``, ``val/acc_emo``, ``val/loss``.
    """
    import torch
    from rich.console import Console

    from cmet.device import pick_device
    from cmet.evaluate import EmotionClassifier, evaluate

    console = Console(stderr=True, quiet=bool(cfg.train.quiet))
    t_start = time.time()
    tc = cfg.train
    if int(tc.steps) < 1 or int(tc.batch_size) < 1:
        raise ConfigError(f"train.steps and train.batch_size must be >= 1; got {tc.steps}, {tc.batch_size}")
    threads = int(tc.num_threads or 0)
    if threads > 0:
        torch.set_num_threads(threads)
    # CPU kernels used here are deterministic (resume == uninterrupted is tested); no global switch, since
    # torch.use_deterministic_algorithms imports torch._dynamo (~10 s on a busy 2-core machine).
    device = pick_device(cfg.device)
    fs, data_hash, out = _features(cfg, features, out_dir)
    train_fs = fs.split("train")
    if train_fs.n_clips == 0:
        raise DataError("the feature set has no clips in split 'train'")
    emotions = train_fs.train_emotions
    if NEUTRAL not in emotions:
        raise DataError("the training split has no neutral clips; C-MET edits from neutral")
    console.log(
        f"data: {fs.n_clips} clips, D_a={fs.d_speech}, D_v={fs.d_expr}, train emotions {emotions}, "
        f"extended {fs.extended_emotions}; device {device}; out {out}"
    )
    classifier = EmotionClassifier(int(cfg.eval.classifier.window), str(cfg.eval.classifier.kind)).fit(
        train_fs
    )
    t_train = time.time()
    histories, models, seen = _train_connectors(
        cfg, fs, train_fs, emotions, classifier, out, device, callback
    )
    train_seconds = time.time() - t_train

    bundle = _bundle(cfg, fs, train_fs, emotions, models, data_hash)
    final_eval = bool(tc.final_eval)
    # without the final evaluation (e.g. tests of checkpointing): no test-split metrics, no images
    metrics = evaluate(bundle, fs, cfg, out_dir=out, classifier=classifier) if final_eval else {}
    h = histories["cmet"]
    if h["val_step"]:
        metrics["val/acc_emo"] = h["val/acc_emo"][-1]
        metrics["val/loss"] = h["val/loss"][-1]
    metrics["train_loss/cmet"] = h["loss"][-1] if h["loss"] else float("nan")
    metrics["train_seconds"] = train_seconds
    metrics["samples_per_s"] = seen / max(train_seconds, 1e-9)
    metrics["total_seconds"] = time.time() - t_start
    bundle.metrics = {k: v for k, v in metrics.items() if isinstance(v, int | float)}
    bundle_dir = bundle.save(out / "bundle")
    metrics["bundle_dir"] = str(bundle_dir)
    metrics["out_dir"] = str(out)
    if final_eval:
        _curves_png(histories, out / "training_curves.png")
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2, default=str))
    return metrics
