"""The training loop of one connector (:func:`train_connector`), its loss (:func:`compute_loss`),
learning-rate schedule and validation (:func:`make_val_fn`); :func:`cmet.train.train` runs it for
C-MET and the speech-direct baseline."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from cmet.checkpoint import load_checkpoint, save_checkpoint
from cmet.data.features import NEUTRAL, FeatureSet
from cmet.errors import DataError


def lr_at(step: int, tc) -> float:
    warm = int(tc.warmup_steps)
    if warm and step < warm:
        return float(tc.lr) * (step + 1) / warm
    total = max(1, int(tc.steps) - warm)
    prog = min(1.0, (step - warm) / total)
    floor = float(tc.min_lr_ratio)
    return float(tc.lr) * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * prog)))


def to_torch(batch, device):
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
    gamma = float(lc.focal_gamma)
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
        l_dir = direction_loss(pred_f, pred_b, squared=bool(lc.dir_squared))
        total = total + w_dir * l_dir
        parts["dir"] = float(l_dir.detach())
    return total, parts


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
        start, history = load_checkpoint(ckpt_path, model, opt, sampler)
    steps, bs = int(tc.steps), int(tc.batch_size)
    amp = bool(tc.mixed_precision) and device.type == "cuda"
    every_log, every_eval, every_ck = int(tc.log_every), int(tc.eval_every), int(tc.checkpoint_every)
    model.to(device).train()
    bar = tqdm(total=steps, initial=start, desc=desc, disable=bool(tc.quiet), leave=False)
    run_loss, run_n = 0.0, 0
    for step in range(start, steps):
        for g in opt.param_groups:
            g["lr"] = lr_at(step, tc)
        batch = to_torch(sampler.sample(bs), device)
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
            save_checkpoint(ckpt_path, model, opt, done, sampler, history)
        if is_eval and callback is not None:
            callback(done, dict(vm))
    bar.close()
    model.eval()
    history["steps_run"] = steps - start  # 0 when a finished run was resumed
    return history


def make_val_fn(val: FeatureSet, classifier, cfg, emotions: list[str], direct: bool, device):
    """val/acc_emo (C-MET protocol on the val identities, few draws) and val/loss (fixed val batches)."""
    import torch

    from cmet.data.sampling import PairSampler
    from cmet.evaluate import make_episodes
    from cmet.infer import predict_offsets_batch, speech_difference, speech_direct

    tc = cfg.train
    basic = [e for e in emotions if e != NEUTRAL]
    eps = make_episodes(val, basic, int(cfg.eval.k_clips), int(tc.val_draws), seed=int(cfg.seed))
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
    val_batches = [to_torch(vs.sample(int(tc.batch_size)), device) for _ in range(int(tc.val_batches))]
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
