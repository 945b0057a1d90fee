"""Section ``accuracy_generated``: the same tables on the embedded default dataset (``data=generated``).

The generated MEAD-like set: own source-filter speech synthesiser with emotion prosody + FACS face
tracks, speech encoded by the prosody encoder; its own speaker-disjoint split (train/val/test
identities). One split (no folds): C-MET + baselines, the loss ablation, k at evaluation, and the
extended emotions the set holds out (blends in speech and face alike; recognised as themselves over
all classes).
"""

from __future__ import annotations

from bench.common import md_table, pct
from bench.context import VARIANTS, Ctx, Section, base_overrides, run_key, train_many
from bench.evalkit import (
    METHODS,
    PAPER_ABLATION,
    PAPER_ACC,
    PAPER_ACC_SRC,
    PAPER_NAMES,
    classifier_for,
    eval_fold,
)

NAME = "accuracy_generated"
TITLE = "Emotion accuracy on the embedded default dataset (generated speech + FACS faces)"


def overrides(ctx: Ctx, variant: str) -> list[str]:
    s = ctx.s
    data = [f"data={ctx.data_override}"] if ctx.data_override else ["data=generated"]
    return [*data, *s["gen_overrides"], *base_overrides(ctx, s["gen_steps"]), *VARIANTS[variant]]


def run(ctx: Ctx) -> Section:
    from cmet.config import compose
    from cmet.data import build_feature_set
    from cmet.model.bundle import ModelBundle

    s = ctx.s
    variants = tuple(s["variants"])
    cfg0 = compose(overrides(ctx, "full"))
    fs = build_feature_set(cfg0)
    fdir = ctx.work / "features" / f"gen-{run_key(overrides(ctx, 'full'))}"
    if not (fdir / "meta.json").is_file():
        fs.save(fdir)
    jobs = [
        dict(label=f"gen-{cfg0.data.source}-{v}", overrides=overrides(ctx, v), features=str(fdir))
        for v in variants
    ]
    runs = dict(zip(variants, train_many(ctx, jobs, "generated set"), strict=True))
    full = runs["full"]
    bundle = ModelBundle.load(full["bundle_dir"])
    clf = classifier_for(fs, cfg0)
    ks = {}
    for k in s["ks"]:
        m, _ = eval_fold(bundle, fs, cfg0, k, clf)
        ks[k] = m
    ext = sorted({k.split("/")[-1] for k in full if k.startswith("acc_emo_ext/cmet/")})
    data = {
        "source": str(cfg0.data.source),
        "encoder": fs.meta["speech_encoder"]["name"],
        "n_clips": fs.n_clips,
        "split_identities": {
            sp: sorted(set(fs.split(sp).clips["identity"])) for sp in ("train", "val", "test")
        },
        "methods": {m: full.get(f"acc_emo/{m}") for m in METHODS},
        "extended": {m: full.get(f"acc_emo_ext/{m}") for m in METHODS},
        "extended_per_emotion": {e: full.get(f"acc_emo_ext/cmet/{e}") for e in ext},
        "ablation": {v: runs[v].get("acc_emo/cmet") for v in variants},
        "k_sweep": {k: {mm: m.get(f"acc_emo/{mm}") for mm in METHODS} for k, m in ks.items()},
        "train_seconds": full.get("train_seconds"),
        "samples_per_s": full.get("samples_per_s"),
    }
    t1 = md_table(
        ["method", "basic Acc_emo %", "extended Acc_emo % (as themselves)", "paper MEAD Acc_emo %"],
        [
            [
                PAPER_NAMES[m],
                pct(data["methods"][m]),
                pct(data["extended"][m]),
                "n/a" if PAPER_ACC[m] is None else f"{PAPER_ACC[m]:.2f} ({PAPER_ACC_SRC[m]})",
            ]
            for m in METHODS
        ],
    )
    names = {"recon": "L_recon only", "recon+cnt": "+ L_cnt", "full": "+ L_cnt + L_dir (full)"}
    t2 = md_table(
        ["C-MET loss", "ours Acc_emo %", "paper Acc_emo %"],
        [[names[v], pct(data["ablation"][v]), PAPER_ABLATION[v]] for v in variants],
    )
    t3 = md_table(
        ["k clips", *[PAPER_NAMES[m] for m in METHODS]],
        [[k, *[pct(data["k_sweep"][k][m]) for m in METHODS]] for k in s["ks"]],
    )
    md = f"""## {TITLE}

Measured on: `data={data["source"]}` ({fs.n_clips} clips; speech encoder `{data["encoder"]}`; identities
train {len(data["split_identities"]["train"])}, val {len(data["split_identities"]["val"])}, test
{len(data["split_identities"]["test"])}), model `cmet_small`, {s["gen_steps"]} steps, batch {s["batch"]};
Acc_emo in the AU expression space on the test identities (same protocol as `accuracy_real`,
k={s["train_k"]} for the main table). Extended emotions ({", ".join(ext) or "none"}) are classified over all
classes (they must be recognised as themselves); label-based cannot express them (n/a).

{t1}

Extended per emotion (C-MET): {", ".join(f"{e} {pct(v)}" for e, v in data["extended_per_emotion"].items()) or "n/a"}.

Loss ablation:

{t2}

k at evaluation (full model):

{t3}

Reproduce: {ctx.reproduce(NAME)}.
"""
    return Section(NAME, TITLE, md, data)
