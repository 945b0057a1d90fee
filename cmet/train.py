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

Checkpoints (``out_dir/checkpoints/<model>_last.pt``: weights, optimiser, step, sampler and torch RNG
states, history) are written every ``cfg.train.checkpoint_every`` steps, at every evaluation and at
the end; with ``cfg.train.resume`` a run continues from them and gives the same result as an
uninterrupted run (on CPU; tested). ``callback(step, metrics)`` is called at each
evaluation (every ``cfg.train.eval_every`` steps) with ``val/acc_emo`` and ``val/loss``; if it raises
(e.g. Optuna pruning), the checkpoint is already saved and the exception propagates.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import time
from pathlib import Path

import numpy as np

from cmet.data.features import NEUTRAL, FeatureSet
from cmet.errors import ConfigError, DataError


def run_dir_for(cfg, data_hash: str = "") -> Path:
    """Default out_dir: ``${paths.runs_dir}/<data.name>-<model.name>-<hash of data/model/train/seed + data content>``.

    ``data_hash`` (``FeatureSet.content_hash()``) makes re-encoded or regenerated data train afresh instead
    of resuming a checkpoint trained on other features.
    """
    from omegaconf import OmegaConf

    key = OmegaConf.to_yaml(
        OmegaConf.create({k: cfg.get(k) for k in ("data", "model", "train", "seed")}), resolve=True
    )
    key += data_hash
    h = hashlib.sha256(key.encode()).hexdigest()[:8]
    return Path(cfg.paths.runs_dir) / f"{cfg.data.get('name', cfg.data.source)}-{cfg.model.name}-{h}"


def seed_everything(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _lr_at(step: int, tc) -> float:
    warm = int(tc.get("warmup_steps", 0))
    if warm and step < warm:
        return float(tc.lr) * (step + 1) / warm
    total = max(1, int(tc.steps) - warm)
    prog = min(1.0, (step - warm) / total)
    floor = float(tc.get("min_lr_ratio", 0.1))
    return float(tc.lr) * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * prog)))


def _to_torch(batch, device):
    import torch

    return {k: torch.as_tensor(v, device=device) for k, v in batch.__dict__.items()}


def compute_loss(model, batch: dict, lc, direct: bool = False) -> tuple:
    """Forward + backward pass losses for one batch (tensors from :class:`~cmet.data.sampling.Batch`).

    Returns (total loss, {"recon", "cnt", "dir"} floats). Shapes: x_src/x_tgt/ref [B,T,D_v], a [B,D_a].
    """
    import torch

    from cmet.model.losses import direction_loss, recon_loss, supcon_loss

    v, ref = batch["v"], batch["ref"]
    t = batch["x_src"].shape[1]
    v_seq = v[:, None, :].expand(-1, t, -1)
    a_f, a_b = (batch["a_tgt"], batch["a_src"]) if direct else (batch["a"], -batch["a"])
    # forward (ref, a_{i->j}, codes of i) -> v_{i->j} and backward (-ref, -a_{i->j}, codes of j) -> v_{j->i},
    # run as one batch of 2B (same math, half the kernel launches)
    b = v.shape[0]
    pred = model(torch.cat([ref, -ref]), torch.cat([a_f, a_b]), torch.cat([batch["x_src"], batch["x_tgt"]]))
    pred_f, pred_b = pred[:b], pred[b:]
    gamma = float(lc.get("focal_gamma", 0.2))
    l_rec = recon_loss(pred_f, v_seq, lc.recon, gamma) + recon_loss(pred_b, -v_seq, lc.recon, gamma)
    total = l_rec
    parts = {"recon": float(l_rec.detach())}
    w_cnt, w_dir = float(lc.w_contrastive), float(lc.w_direction)
    if w_cnt > 0:
        tau = float(lc.temperature)
        s_tok = model.speech_token(torch.cat([a_f, a_b]))
        v_feat = model.visual_feature(torch.cat([v_seq, -v_seq]))
        l_cnt = 0.5 * (
            supcon_loss(s_tok[:b], v_feat[:b], batch["emo_tgt"], tau)
            + supcon_loss(s_tok[b:], v_feat[b:], batch["emo_src"], tau)
        )
        total = total + w_cnt * l_cnt
        parts["cnt"] = float(l_cnt.detach())
    if w_dir > 0:
        l_dir = direction_loss(pred_f, pred_b, squared=bool(lc.get("dir_squared", True)))
        total = total + w_dir * l_dir
        parts["dir"] = float(l_dir.detach())
    return total, parts


def _save_ckpt(path: Path, model, opt, step: int, sampler, history: dict) -> None:
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(
        dict(
            model=model.state_dict(),
            opt=opt.state_dict(),
            step=step,
            sampler=json.dumps(sampler.state()),
            torch_rng=torch.get_rng_state(),
            history=json.dumps(history),
        ),
        tmp,
    )
    tmp.replace(path)


def _load_ckpt(path: Path, model, opt, sampler) -> tuple[int, dict]:
    import torch

    ck = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict(ck["model"])
    opt.load_state_dict(ck["opt"])
    sampler.set_state(json.loads(ck["sampler"]))
    torch.set_rng_state(ck["torch_rng"])
    return int(ck["step"]), json.loads(ck["history"])


def train_connector(
    model,
    sampler,
    cfg,
    device,
    ckpt_path: Path | None,
    direct: bool = False,
    val_fn=None,
    callback=None,
    desc: str = "train",
) -> dict:
    """The training loop of one connector; returns the history {"step", "loss", "val/..."}."""
    import torch
    from tqdm.auto import tqdm

    tc = cfg.train
    opt = torch.optim.AdamW(model.parameters(), lr=float(tc.lr), weight_decay=float(tc.weight_decay))
    history: dict = {"step": [], "loss": [], "recon": [], "val_step": [], "val/acc_emo": [], "val/loss": []}
    start = 0
    if ckpt_path is not None and bool(tc.resume) and ckpt_path.is_file():
        start, history = _load_ckpt(ckpt_path, model, opt, sampler)
    steps, bs = int(tc.steps), int(tc.batch_size)
    amp = bool(tc.get("mixed_precision", False)) and device.type == "cuda"
    every_log, every_eval, every_ck = int(tc.log_every), int(tc.eval_every), int(tc.checkpoint_every)
    model.to(device).train()
    bar = tqdm(total=steps, initial=start, desc=desc, disable=bool(tc.get("quiet", False)), leave=False)
    run_loss, run_n = 0.0, 0
    for step in range(start, steps):
        for g in opt.param_groups:
            g["lr"] = _lr_at(step, tc)
        batch = _to_torch(sampler.sample(bs), device)
        with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=amp):
            loss, parts = compute_loss(model, batch, tc.loss, direct)
        if not torch.isfinite(loss):
            raise DataError(f"training loss became non-finite at step {step} ({parts}); check the features")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if float(tc.grad_clip) > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), float(tc.grad_clip))
        opt.step()
        run_loss += float(loss.detach())
        run_n += 1
        done = step + 1
        bar.update(1)
        if done % every_log == 0 or done == steps:
            history["step"].append(done)
            history["loss"].append(run_loss / run_n)
            history["recon"].append(parts["recon"])
            bar.set_postfix(loss=f"{run_loss / run_n:.4f}")
            run_loss, run_n = 0.0, 0
        is_eval = val_fn is not None and every_eval > 0 and done % every_eval == 0
        if is_eval:
            vm = val_fn(model)
            model.train()
            history["val_step"].append(done)
            for k in ("val/acc_emo", "val/loss"):
                history[k].append(vm[k])
        if ckpt_path is not None and (done % every_ck == 0 or done == steps or is_eval):
            _save_ckpt(ckpt_path, model, opt, done, sampler, history)
        if is_eval and callback is not None:
            callback(done, dict(vm))
    bar.close()
    model.eval()
    history["steps_run"] = steps - start  # 0 when a finished run was resumed
    return history


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


def make_val_fn(val: FeatureSet, classifier, cfg, emotions: list[str], direct: bool, device):
    """val/acc_emo (C-MET protocol on the val identities, few draws) and val/loss (fixed val batches)."""
    import torch

    from cmet.data.sampling import PairSampler
    from cmet.evaluate import make_episodes
    from cmet.infer import predict_offsets_batch, speech_difference, speech_direct

    tc = cfg.train
    basic = [e for e in emotions if e != NEUTRAL]
    eps = make_episodes(val, basic, int(cfg.eval.k_clips), int(tc.get("val_draws", 2)), seed=int(cfg.seed))
    if not eps:
        return None
    seqs = [val.frames(e["input"]) for e in eps]
    a = np.stack(
        [
            speech_direct(val.speech[e["tgt_ids"]])
            if direct
            else speech_difference(val.speech[e["tgt_ids"]], val.speech[e["neu_ids"]])
            for e in eps
        ]
    )
    vs = PairSampler(val, emotions, int(cfg.model.window), int(tc.k_clips), 1, seed=int(cfg.seed) + 99)
    val_batches = [
        _to_torch(vs.sample(int(tc.batch_size)), device) for _ in range(int(tc.get("val_batches", 2)))
    ]
    allowed = [c for c in classifier.classes if c in emotions]
    targets = [e["emotion"] for e in eps]

    def val_fn(model) -> dict:
        model.eval()
        with torch.no_grad():
            vl = float(np.mean([float(compute_loss(model, b, tc.loss, direct)[0]) for b in val_batches]))
        offs = predict_offsets_batch(model, seqs, a)
        pred = classifier.predict([s + o for s, o in zip(seqs, offs, strict=True)], allowed)
        acc = float(np.mean([p == t for p, t in zip(pred, targets, strict=True)]))
        return {"val/acc_emo": acc, "val/loss": vl}

    return val_fn


def train(cfg, features: FeatureSet | None = None, out_dir: str | Path | None = None, callback=None) -> dict:
    """Train C-MET + baselines, evaluate on held-out identities; see the module docstring.

    Returns a flat metrics dict: ``acc_emo/{cmet,label,speech_direct,reference,oracle}``, per-emotion
    ``acc_emo/cmet/<emotion>``, ``acc_emo_ext/...``, ``cos/...``, ``recon_mse/...``, ``nn_norm/cmet``,
    ``bundle_dir``, ``out_dir``, ``train_seconds``, ``samples_per_s``, ``val/acc_emo``, ``val/loss``.
    """
    import torch
    from rich.console import Console

    from cmet.audio.spec import EncoderSpec
    from cmet.data import build_feature_set
    from cmet.data.sampling import PairSampler
    from cmet.device import pick_device
    from cmet.evaluate import EmotionClassifier, evaluate
    from cmet.model.baselines import fit_label_offsets
    from cmet.model.bundle import ModelBundle
    from cmet.model.connector import Connector

    console = Console(stderr=True, quiet=bool(cfg.train.get("quiet", False)))
    t_start = time.time()
    tc = cfg.train
    if int(tc.steps) < 1 or int(tc.batch_size) < 1:
        raise ConfigError(f"train.steps and train.batch_size must be >= 1; got {tc.steps}, {tc.batch_size}")
    threads = int(tc.get("num_threads", 0) or 0)
    if threads > 0:
        torch.set_num_threads(threads)
    # CPU kernels used here are deterministic (resume == uninterrupted is tested); no global switch, since
    # torch.use_deterministic_algorithms imports torch._dynamo (~10 s on a busy 2-core machine).
    seed = int(cfg.seed)
    device = pick_device(cfg.get("device", "auto"))
    fs = features if features is not None else build_feature_set(cfg)
    fs.validate()
    data_hash = fs.content_hash()
    out = Path(out_dir) if out_dir is not None else run_dir_for(cfg, data_hash)
    out.mkdir(parents=True, exist_ok=True)
    stamp = out / "data_hash.txt"
    if stamp.is_file() and stamp.read_text().strip() != data_hash and bool(tc.resume):
        raise ConfigError(
            f"{out} holds a run trained on other features (data hash {stamp.read_text().strip()} != {data_hash}); "
            "choose another out_dir, or set train.resume=false to train over it"
        )
    stamp.write_text(data_hash)
    train_fs, val_fs = fs.split("train"), fs.split("val")
    if train_fs.n_clips == 0:
        raise DataError("the feature set has no clips in split 'train'")
    emotions = train_fs.train_emotions
    if NEUTRAL not in emotions:
        raise DataError("the training split has no neutral clips; C-MET edits from neutral")
    console.log(
        f"data: {fs.n_clips} clips, D_a={fs.d_speech}, D_v={fs.d_expr}, train emotions {emotions}, "
        f"extended {fs.extended_emotions}; device {device}; out {out}"
    )
    classifier = EmotionClassifier(
        int(cfg.eval.classifier.window), str(cfg.eval.classifier.get("kind", "lda"))
    ).fit(train_fs)

    histories, models, seen = {}, {}, 0
    kinds = [("cmet", False)]
    if "speech_direct" in list(cfg.eval.get("baselines", [])):
        kinds.append(("speech_direct", True))
    t_train = time.time()
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
            float(tc.get("ref_drop", 0.0)),
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
    train_seconds = time.time() - t_train

    baselines: dict = {}
    if "speech_direct" in models:
        baselines["speech_direct"] = models["speech_direct"]
    if "label" in list(cfg.eval.get("baselines", [])):
        baselines["label"] = fit_label_offsets(train_fs, emotions)
    from omegaconf import OmegaConf

    bundle = ModelBundle(
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
            seed=seed,
            steps=int(tc.steps),
        ),
    )
    if bool(tc.get("final_eval", True)):
        metrics = evaluate(bundle, fs, cfg, out_dir=out, classifier=classifier)
    else:  # training only (e.g. tests of checkpointing): no test-split evaluation, no images
        metrics = {}
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
    if bool(tc.get("final_eval", True)):
        _curves_png(histories, out / "training_curves.png")
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2, default=str))
    return metrics
