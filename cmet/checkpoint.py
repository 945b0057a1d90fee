"""Training checkpoints and resume.

``out_dir/checkpoints/<model>_last.pt`` holds the weights, optimiser, step, sampler and torch RNG
states and the history; a resumed run gives the same result as an uninterrupted one (on CPU).
``out_dir/data_hash.txt`` names the features a run folder was trained on: resuming it on other
features is refused.
"""

from __future__ import annotations

import json
from pathlib import Path

from cmet.errors import ConfigError


def claim_run_dir(out: Path, data_hash: str, resume: bool) -> None:
    """Create ``out`` and stamp it with ``data_hash``; ConfigError when ``resume`` would continue a
    run trained on other features."""
    out.mkdir(parents=True, exist_ok=True)
    stamp = out / "data_hash.txt"
    if stamp.is_file() and stamp.read_text().strip() != data_hash and resume:
        raise ConfigError(
            f"{out} holds a run trained on other features (data hash {stamp.read_text().strip()} != {data_hash}); "
            "choose another out_dir, or set train.resume=false to train over it"
        )
    stamp.write_text(data_hash)


def save_checkpoint(path: Path, model, opt, step: int, sampler, history: dict) -> None:
    """Write the training state atomically (a temp file renamed over the last checkpoint)."""
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


def load_checkpoint(path: Path, model, opt, sampler) -> tuple[int, dict]:
    """Restore model, optimiser, sampler and torch RNG states in place; returns (step, history)."""
    import torch

    ck = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict(ck["model"])
    opt.load_state_dict(ck["opt"])
    sampler.set_state(json.loads(ck["sampler"]))
    torch.set_rng_state(ck["torch_rng"])
    return int(ck["step"]), json.loads(ck["history"])
