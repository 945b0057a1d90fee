"""Evaluation in the expression space: the paper's Acc_emo and the semantic-vector measures.

Protocol (held-out identities of ``split``, default ``test``):

* :class:`EmotionClassifier`: standardised linear discriminant analysis (``kind: lda``, Gaussian classes
  with a shared covariance; or ``logreg``, multinomial logistic regression) on **window means**
  (``cfg.eval.classifier.window`` frames) of the ground-truth expression codes of the TRAINING
  identities, all emotions present there (basic and extended classes). A sequence is classified by
  the sum of its windows' log-probabilities. For a basic target the decision is restricted to the
  basic (training) classes, as the paper's classifier knows only MEAD's 8; for an extended target it
  is taken over all classes (basic + extended), i.e. the extended emotion must be recognised as itself.
* Episodes: for every held-out identity, target emotion (not neutral) and level with clips,
  ``cfg.eval.n_draws`` random draws of k (``cfg.eval.k_clips``) neutral clips (level 1) and k target
  clips. The edited sequence = a further neutral clip of the identity (its per-frame codes) + the
  predicted offsets. Ground-truth visual semantic vector ``v = mean_k(E(target)) - mean_k(E(neutral))``.
* Methods: ``cmet`` (bundle connector, speech difference of the drawn clips), ``speech_direct``
  (mean target speech), ``label`` (per-emotion offset; n/a for extended emotions), ``reference``
  (another clip of the target emotion of the same identity and level), ``oracle`` (input + v: the
  ceiling of any constant-offset edit).
* Metrics (names also used by :func:`cmet.train.train`): ``acc_emo/<m>``, ``acc_emo/<m>/<emotion>``,
  ``cos/<m>`` (mean cosine between the time mean of the predicted offsets and v), ``recon_mse/<m>``
  (mean squared error of the per-frame offsets against v), the same with ``_ext`` for extended
  emotions, and ``nn_norm/cmet`` (norm of the predicted neutral->neutral vector) vs ``v_norm``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cmet.data.features import NEUTRAL, FeatureSet
from cmet.data.sampling import CellIndex
from cmet.errors import ConfigError, DataError

METHODS = ("cmet", "speech_direct", "label", "reference", "oracle")


def window_means(codes: np.ndarray, window: int) -> np.ndarray:
    """Non-overlapping window means: [L, D_v] -> [ceil(L/window), D_v]."""
    n = -(-len(codes) // window)
    pad = n * window - len(codes)
    if pad:
        codes = np.concatenate([codes, np.repeat(codes[-1:], pad, 0)])
    return codes.reshape(n, window, -1).mean(1)


class EmotionClassifier:
    """Emotion classifier on ground-truth expression codes (window means) of training identities."""

    def __init__(self, window: int = 5, kind: str = "lda", max_windows: int = 40000, seed: int = 0):
        self.window, self.kind, self.max_windows, self.seed = int(window), kind, int(max_windows), seed
        self.classes: list[str] = []

    def fit(self, train: FeatureSet) -> EmotionClassifier:
        from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
        from sklearn.linear_model import LogisticRegression
        from sklearn.preprocessing import StandardScaler

        xs, ys = [], []
        for i, emo in enumerate(train.clips["emotion"].tolist()):
            w = window_means(train.frames(i), self.window)
            xs.append(w)
            ys += [emo] * len(w)
        x, y = np.concatenate(xs), np.array(ys)
        if len(set(ys)) < 2:
            raise DataError("the emotion classifier needs at least two emotions in the training split")
        if len(x) > self.max_windows:
            keep = np.random.default_rng(self.seed).choice(len(x), self.max_windows, replace=False)
            x, y = x[keep], y[keep]
        self.scaler = StandardScaler().fit(x)
        if self.kind == "lda":
            self.model = LinearDiscriminantAnalysis().fit(self.scaler.transform(x), y)
        elif self.kind == "logreg":
            self.model = LogisticRegression(max_iter=300, C=1.0).fit(self.scaler.transform(x), y)
        else:
            raise ConfigError(f"eval.classifier.kind must be lda or logreg; got {self.kind!r}")
        self.classes = [str(c) for c in self.model.classes_]
        self.train_accuracy = float((self.model.predict(self.scaler.transform(x)) == y).mean())
        return self

    def sequence_scores(self, codes: np.ndarray) -> np.ndarray:
        """Sum over windows of log-probabilities: [L, D_v] -> [n_classes]."""
        w = window_means(np.asarray(codes, np.float32), self.window)
        return self.model.predict_log_proba(self.scaler.transform(w)).sum(0)

    def predict(self, seqs: list[np.ndarray], allowed: list[str] | None = None) -> list[str]:
        """Predicted emotion per sequence, argmax over ``allowed`` classes (default all)."""
        allowed_idx = [self.classes.index(c) for c in (allowed or self.classes) if c in self.classes]
        out = []
        for s in seqs:
            sc = self.sequence_scores(s)
            out.append(self.classes[allowed_idx[int(np.argmax(sc[allowed_idx]))]])
        return out


def make_episodes(
    fs: FeatureSet, targets: list[str], k: int, n_draws: int, seed: int = 0, min_clips: int = 1
) -> list[dict]:
    """Evaluation episodes on the identities of ``fs`` (see the module docstring); targets may include neutral."""
    rng = np.random.default_rng(seed)
    idx = CellIndex(fs, [NEUTRAL, *[t for t in targets if t != NEUTRAL]], min_clips=min_clips)
    eps = []
    for (ident, emo, lv), clips in sorted(idx.cells.items()):
        if emo not in targets:
            continue
        neu = idx.cells.get((ident, NEUTRAL, idx.neutral_level))
        if neu is None:
            continue
        for _ in range(n_draws):
            neu_perm = rng.permutation(neu)
            if emo == NEUTRAL:  # neutral -> neutral: disjoint halves of the neutral clips
                half = max(1, len(neu_perm) // 2)
                tgt_ids, rest = neu_perm[:half][:k], neu_perm[half:]
                neu_ids = rest[:k] if len(rest) else neu_perm[:k]
                inp = rest[k] if len(rest) > k else neu_perm[-1]
                ref = tgt_ids[-1]
            else:
                neu_ids = neu_perm[:k]
                inp = neu_perm[k] if len(neu_perm) > k else neu_perm[-1]
                tgt_perm = rng.permutation(clips)
                tgt_ids = tgt_perm[:k]
                ref = tgt_perm[k] if len(tgt_perm) > k else tgt_perm[-1]
            eps.append(
                dict(
                    identity=ident,
                    emotion=emo,
                    level=lv,
                    neu_ids=neu_ids,
                    tgt_ids=tgt_ids,
                    input=int(inp),
                    ref=int(ref),
                )
            )
    return eps


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-8))


def run_methods(bundle, fs: FeatureSet, episodes: list[dict], methods=METHODS, intensity: float = 1.0):
    """Offsets [L, D_v] (or None = n/a) per method per episode, and the ground truth v per episode."""
    from cmet.infer import predict_offsets_batch, speech_difference, speech_direct

    clip_expr = fs.clip_mean_expr()
    seqs = [fs.frames(e["input"]) for e in episodes]
    v_true = np.stack([clip_expr[e["tgt_ids"]].mean(0) - clip_expr[e["neu_ids"]].mean(0) for e in episodes])
    out: dict[str, list] = {}
    if "cmet" in methods:
        a = np.stack(
            [speech_difference(fs.speech[e["tgt_ids"]], fs.speech[e["neu_ids"]], intensity) for e in episodes]
        )
        out["cmet"] = predict_offsets_batch(bundle.connector, seqs, a)
    if "speech_direct" in methods and "speech_direct" in bundle.baselines:
        a = np.stack([speech_direct(fs.speech[e["tgt_ids"]], intensity) for e in episodes])
        out["speech_direct"] = predict_offsets_batch(bundle.baselines["speech_direct"], seqs, a)
    if "label" in methods and "label" in bundle.baselines:
        lab = bundle.baselines["label"]
        out["label"] = [
            None if e["emotion"] not in lab else np.broadcast_to(lab[e["emotion"]] * intensity, s.shape)
            for e, s in zip(episodes, seqs, strict=True)
        ]
    if "reference" in methods:
        out["reference"] = [
            np.broadcast_to(
                (fs.frames(e["ref"]).mean(0) - clip_expr[e["neu_ids"]].mean(0)) * intensity, s.shape
            )
            for e, s in zip(episodes, seqs, strict=True)
        ]
    if "oracle" in methods:
        out["oracle"] = [np.broadcast_to(v, s.shape) for v, s in zip(v_true, seqs, strict=True)]
    return seqs, v_true, out


def score(
    clf: EmotionClassifier,
    episodes,
    seqs,
    v_true,
    offsets: dict,
    basic: list[str],
    suffix: str = "",
    allowed: list[str] | None = None,
):
    """Metrics dict + per-method (targets, predictions) for the confusion matrix."""
    metrics: dict[str, float] = {}
    preds: dict[str, tuple[list[str], list[str]]] = {}
    targets = [e["emotion"] for e in episodes]
    for m, offs in offsets.items():
        ok = [i for i, o in enumerate(offs) if o is not None]
        if not ok:
            metrics[f"acc_emo{suffix}/{m}"] = float("nan")
            continue
        edited = [seqs[i] + offs[i] for i in ok]
        p = clf.predict(edited, allowed)
        t = [targets[i] for i in ok]
        preds[m] = (t, p)
        hit = np.array([a == b for a, b in zip(t, p, strict=True)])
        metrics[f"acc_emo{suffix}/{m}"] = float(hit.mean())
        for emo in sorted(set(t)):
            sel = np.array([x == emo for x in t])
            metrics[f"acc_emo{suffix}/{m}/{emo}"] = float(hit[sel].mean())
        metrics[f"cos{suffix}/{m}"] = float(np.mean([_cos(offs[i].mean(0), v_true[i]) for i in ok]))
        metrics[f"recon_mse{suffix}/{m}"] = float(np.mean([((offs[i] - v_true[i]) ** 2).mean() for i in ok]))
    return metrics, preds


def paired_gain(a_correct, b_correct, n_boot: int = 2000, level: float = 0.95, seed: int = 0) -> dict:
    """Paired comparison of two methods on the same episodes (booleans [N], episode-aligned).

    Returns ``gain`` (mean of a - b), ``lower`` / ``upper`` (one-sided ``level`` bounds of the gain from
    a paired bootstrap over episodes, fixed seed), ``p_sign`` (exact two-sided sign test on the
    discordant episodes), ``n`` and ``discordant``."""
    from scipy.stats import binomtest

    a, b = np.asarray(a_correct, bool), np.asarray(b_correct, bool)
    if a.shape != b.shape or a.ndim != 1 or a.size == 0:
        raise DataError(
            f"paired comparison needs two aligned non-empty boolean vectors; got {a.shape}, {b.shape}"
        )
    d = a.astype(float) - b.astype(float)
    idx = np.random.default_rng(seed).integers(0, d.size, (n_boot, d.size))
    boot = d[idx].mean(1)
    wins, losses = int((d > 0).sum()), int((d < 0).sum())
    p = binomtest(wins, wins + losses, 0.5).pvalue if wins + losses else 1.0
    return {
        "gain": float(d.mean()),
        "lower": float(np.quantile(boot, 1 - level)),
        "upper": float(np.quantile(boot, level)),
        "p_sign": float(p),
        "n": int(d.size),
        "discordant": wins + losses,
    }


def paired_metrics(preds: dict, method: str = "cmet", baseline: str = "speech_direct") -> dict[str, float]:
    """``acc_emo_gain[_lb|_ub|_p]/<baseline>``: :func:`paired_gain` of ``method`` over ``baseline`` from
    the (targets, predictions) of :func:`score` (both over the same episodes, in order)."""
    if method not in preds or baseline not in preds:
        return {}
    (t, pa), (t2, pb) = preds[method], preds[baseline]
    if t != t2:
        return {}
    g = paired_gain(
        [x == y for x, y in zip(t, pa, strict=True)], [x == y for x, y in zip(t, pb, strict=True)]
    )
    return {
        f"acc_emo_gain/{baseline}": g["gain"],
        f"acc_emo_gain_lb/{baseline}": g["lower"],
        f"acc_emo_gain_ub/{baseline}": g["upper"],
        f"acc_emo_gain_p/{baseline}": g["p_sign"],
    }


def confusion_png(preds: dict, classes: list[str], path: Path, title: str = "") -> Path:
    """Row-normalised confusion matrices (target x predicted), one panel per method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from cmet.plots import annotate_cells, save_figure

    methods = [m for m in preds if preds[m][0] and m != "oracle"]

    def panel(ax, m, fontsize):
        t, p = preds[m]
        rows = [c for c in classes if c in set(t)]
        cm = np.zeros((len(rows), len(classes)))
        for a, b in zip(t, p, strict=True):
            cm[rows.index(a), classes.index(b)] += 1
        cm = cm / np.maximum(cm.sum(1, keepdims=True), 1)
        ax.imshow(cm, vmin=0, vmax=1, cmap="Blues")
        ax.set_xticks(range(len(classes)), classes, rotation=70, fontsize=fontsize)
        ax.set_yticks(range(len(rows)), rows, fontsize=fontsize)
        ax.set_xlabel("predicted emotion (classifier on the edited codes)", fontsize=fontsize)
        ax.set_ylabel("target emotion", fontsize=fontsize)
        acc = np.mean([a == b for a, b in zip(t, p, strict=True)])
        ax.set_title(f"{m}  Acc_emo {100 * acc:.1f}%", fontsize=fontsize + 2)
        annotate_cells(ax, cm, fontsize=fontsize - 2, min_value=0.1, white_above=0.5)

    fig, axes = plt.subplots(
        1, max(1, len(methods)), figsize=(4.2 * max(1, len(methods)), 4.4), squeeze=False
    )
    for ax, m in zip(axes[0], methods, strict=False):
        panel(ax, m, 7)
    fig.suptitle(title, fontsize=10)
    for m in methods:  # one readable figure per method beside the overview: <stem>_<method>.png
        one, ax = plt.subplots(figsize=(6.4, 6.0))
        panel(ax, m, 10)
        one.suptitle(title, fontsize=11)
        save_figure(one, path.with_name(f"{path.stem}_{m}.png"), dpi=110)
    return save_figure(fig, path, dpi=90)


def evaluate(
    bundle,
    features: FeatureSet,
    cfg,
    out_dir=None,
    split: str = "test",
    classifier: EmotionClassifier | None = None,
    methods=METHODS,
) -> dict:
    """Acc_emo and semantic-vector measures of ``bundle`` (and its baselines) on held-out identities.

    features: the whole FeatureSet (the classifier is fitted on its ``train`` split unless given);
    returns a flat metrics dict (names in the module docstring); with ``out_dir`` writes
    ``confusion_matrix.png`` (basic targets) and ``confusion_matrix_ext.png`` (extended targets).
    """
    ev = cfg.eval
    if features.d_expr != bundle.d_expr or features.d_speech != bundle.d_speech:
        raise DataError(
            f"features have D_a={features.d_speech}, D_v={features.d_expr}; the model expects "
            f"D_a={bundle.d_speech}, D_v={bundle.d_expr}"
        )
    if classifier is None:
        classifier = EmotionClassifier(int(ev.classifier.window), ev.classifier.kind).fit(
            features.split("train")
        )
    held = features.split(split)
    if held.n_clips == 0:
        raise DataError(f"no clips in split {split!r} to evaluate on")
    basic = [e for e in bundle.emotions if e not in bundle.extended_emotions]
    ext = [e for e in held.emotions if e not in basic]
    seed = int(cfg.seed)
    k, nd, inten = int(ev.k_clips), int(ev.n_draws), float(ev.intensity)
    metrics: dict[str, float] = {}
    eps = make_episodes(held, [e for e in basic if e != NEUTRAL], k, nd, seed)
    if not eps:
        raise DataError(f"split {split!r} has no (identity, emotion) with both neutral and emotional clips")
    seqs, v, offs = run_methods(bundle, held, eps, methods, inten)
    m, preds = score(classifier, eps, seqs, v, offs, basic, "", [c for c in classifier.classes if c in basic])
    metrics.update(m)
    metrics.update(paired_metrics(preds, "cmet", "speech_direct"))
    metrics["v_norm"] = float(np.linalg.norm(v, axis=1).mean())
    metrics["n_episodes"] = len(eps)
    preds_ext: dict = {}
    if ext:
        eps_x = make_episodes(held, ext, k, nd, seed + 1)
        if eps_x:
            seqs_x, v_x, offs_x = run_methods(bundle, held, eps_x, methods, inten)
            m, preds_ext = score(classifier, eps_x, seqs_x, v_x, offs_x, basic, "_ext", None)
            metrics.update(m)
            metrics["n_episodes_ext"] = len(eps_x)
    if held.meta.get("ser_labels") and "label" in bundle.baselines:
        from cmet.readout import extended_agreement

        metrics.update(extended_agreement(bundle, held)[0])
    if "cmet" in methods:
        eps_n = make_episodes(held, [NEUTRAL], k, max(2, nd // 2), seed + 2)
        if eps_n:
            _, _, offs_n = run_methods(bundle, held, eps_n, ("cmet",), inten)
            metrics["nn_norm/cmet"] = float(np.mean([np.linalg.norm(o.mean(0)) for o in offs_n["cmet"]]))
    metrics["classifier/train_acc"] = classifier.train_accuracy
    if out_dir is not None:
        out_dir = Path(out_dir)
        confusion_png(
            preds,
            classifier.classes,
            out_dir / "confusion_matrix.png",
            f"held-out identities ({split}), basic emotions",
        )
        if preds_ext:
            confusion_png(
                preds_ext,
                classifier.classes,
                out_dir / "confusion_matrix_ext.png",
                f"held-out identities ({split}), extended emotions",
            )
    return metrics
