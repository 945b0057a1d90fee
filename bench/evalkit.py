"""Evaluation helpers shared by the accuracy sections: one fold at a given k, pooled over folds.

Uses the library's own protocol pieces (:mod:`cmet.evaluate`: classifier, episodes, methods, score)
so that the figures here are the ones ``cmet evaluate`` reports; pooling the per-episode predictions
over folds gives one confusion matrix per method.
"""

from __future__ import annotations

import numpy as np

from cmet.data.features import NEUTRAL

METHODS = ("cmet", "speech_direct", "label", "reference", "oracle")
PAPER_NAMES = {
    "cmet": "C-MET",
    "label": "label-based",
    "speech_direct": "speech-direct",
    "reference": "reference-based",
    "oracle": "oracle (true v)",
}
#: the paper's Table 1 (MEAD Acc_emo %, its own Emotion-FAN classifier on generated video)
PAPER_ACC = {"cmet": 55.91, "label": 41.56, "speech_direct": 13.21, "reference": 41.99, "oracle": None}
PAPER_ACC_SRC = {
    "cmet": "C-MET",
    "label": "EAT",
    "speech_direct": "FLOAT",
    "reference": "EDTalk",
    "oracle": "",
}
PAPER_ABLATION = {"recon": 49.43, "recon+cnt": 53.46, "full": 55.91}
PAPER_PER_EMOTION = {
    "angry": 78.6,
    "contempt": 3.0,
    "disgusted": 72.1,
    "fear": 44.7,
    "happy": 75.0,
    "sad": 45.5,
    "surprised": 73.3,
}


def classifier_for(fs, cfg):
    from cmet.evaluate import EmotionClassifier

    ev = cfg.eval
    return EmotionClassifier(int(ev.classifier.window), str(ev.classifier.get("kind", "lda"))).fit(
        fs.split("train")
    )


def eval_fold(bundle, fs, cfg, k: int, clf=None, methods=METHODS, split: str = "test") -> tuple[dict, dict]:
    """Basic-emotion Acc_emo of every method on ``split`` at k clips: (metrics, {method: (targets, preds)})."""
    from cmet.evaluate import make_episodes, run_methods, score

    clf = clf or classifier_for(fs, cfg)
    held = fs.split(split)
    basic = [e for e in bundle.emotions if e not in bundle.extended_emotions]
    eps = make_episodes(
        held, [e for e in basic if e != NEUTRAL], int(k), int(cfg.eval.n_draws), int(cfg.seed)
    )
    seqs, v, offs = run_methods(bundle, held, eps, methods, float(cfg.eval.get("intensity", 1.0)))
    m, preds = score(clf, eps, seqs, v, offs, basic, "", [c for c in clf.classes if c in basic])
    m["n_episodes"] = len(eps)
    m["k_effective_median"] = float(np.median([len(e["tgt_ids"]) for e in eps]))
    return m, preds


def pool(preds_list: list[dict]) -> dict:
    out: dict = {}
    for p in preds_list:
        for m, (t, y) in p.items():
            a, b = out.setdefault(m, ([], []))
            a.extend(t)
            b.extend(y)
    return out


def acc(t: list, p: list) -> float:
    return float(np.mean([a == b for a, b in zip(t, p, strict=True)])) if t else float("nan")
