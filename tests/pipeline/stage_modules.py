"""Run one library stage of the pipeline on a tiny simulator config and print, as JSON, the cmet source
files it imported (used by test_cache_keys: every such file must be hashed into the stage's key).

    python tests/pipeline/stage_modules.py WORK {data|data-release|train|evaluate}

``data-release`` builds ``make run``'s data (``release_au``, from the vendored vectors) instead.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

TINY = [
    "data.identities={train: 4, val: 1, test: 2}",
    "data.clips_per_cell=3",
    "data.frames=[20, 30]",
    "data.sentences=8",
    "model.d_model=16",
    "model.n_layers=1",
    "model.n_heads=2",
    "model.ff_dim=16",
    "model.conv_channels=4",
    "train.steps=4",
    "train.batch_size=8",
    "train.eval_every=4",
    "train.checkpoint_every=4",
    "train.quiet=true",
    "train.num_threads=1",
    "eval.k_clips=2",
    "eval.n_draws=1",
    "device=cpu",
]


def cmet_files(root: Path) -> set[str]:
    out = set()
    for name, mod in list(sys.modules.items()):
        f = getattr(mod, "__file__", None)
        if name.split(".")[0] == "cmet" and f:
            out.add(str(Path(f).resolve().relative_to(root)))
    return out


def main(work: Path, stage: str) -> None:
    from cmet.config import compose

    root = Path(__import__("cmet").__file__).resolve().parent.parent
    cfg = compose([f"paths.work_dir={work}/w", *TINY])
    before = cmet_files(root)
    if stage == "data":
        from cmet.data import build_feature_set

        build_feature_set(cfg).save(work / "fs")
    elif stage == "data-release":
        from cmet.data import build_feature_set

        absent = work / "no-release"
        build_feature_set(
            compose([f"paths.work_dir={work}/w", "data=release_au", f"data.release_dir={absent}"])
        )
    elif stage == "train":
        from cmet.data.features import FeatureSet
        from cmet.train import train

        train(cfg, features=FeatureSet.load(work / "fs"), out_dir=work / "run")
    else:
        from cmet.data.features import FeatureSet
        from cmet.evaluate import evaluate
        from cmet.model.bundle import ModelBundle

        evaluate(ModelBundle.load(work / "run" / "bundle"), FeatureSet.load(work / "fs"), cfg, work / "ev")
    print(json.dumps({"before": sorted(before), "after": sorted(cmet_files(root))}))


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2])
