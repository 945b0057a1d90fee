"""``cmet train`` and ``cmet evaluate``: the model commands (heavy imports inside the commands)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

METHOD_LABELS = {
    "cmet": "C-MET (speech differences)",
    "speech_direct": "speech-direct (FLOAT-like)",
    "label": "label-based (EAT-like)",
    "reference": "reference-based (EDTalk-like)",
    "oracle": "oracle offset (ground-truth v)",
}


def _fmt(x, digits: int = 1) -> str:
    if x is None or (isinstance(x, float) and x != x):
        return "n/a"
    return f"{100 * x:.{digits}f}"


def print_table(metrics: dict, title: str) -> None:
    """Rich table: Acc_emo (basic, extended), cosine and reconstruction error per method."""
    from rich.console import Console
    from rich.table import Table

    t = Table(title=title + "\nlabel-based: n/a for extended emotions (no label to give it)")
    for col in ("method", "Acc_emo %", "Acc_emo ext %", "cos(v̂, v)", "recon MSE"):
        t.add_column(col, justify="left" if col == "method" else "right")
    for m, label in METHOD_LABELS.items():
        if f"acc_emo/{m}" not in metrics:
            continue
        cos = metrics.get(f"cos/{m}")
        mse = metrics.get(f"recon_mse/{m}")
        t.add_row(
            label,
            _fmt(metrics.get(f"acc_emo/{m}")),
            _fmt(metrics.get(f"acc_emo_ext/{m}", float("nan"))),
            "n/a" if cos is None else f"{cos:.3f}",
            "n/a" if mse is None else f"{mse:.4f}",
        )
    con = Console()
    con = Console(width=max(con.width, 120))
    con.print(t)
    emos = sorted({k.split("/")[-1] for k in metrics if k.startswith("acc_emo/cmet/")})
    ext = sorted({k.split("/")[-1] for k in metrics if k.startswith("acc_emo_ext/cmet/")})
    if emos or ext:
        pe = Table(title="Acc_emo % per target emotion (held-out identities; * = extended)")
        pe.add_column("method", no_wrap=True)
        for e in emos + ext:
            pe.add_column(e[:5] + ("*" if e in ext else ""), justify="right", no_wrap=True)
        for m in METHOD_LABELS:
            if f"acc_emo/{m}" not in metrics:
                continue
            pe.add_row(
                m,
                *[_fmt(metrics.get(f"acc_emo/{m}/{e}", float("nan")), 0) for e in emos],
                *[_fmt(metrics.get(f"acc_emo_ext/{m}/{e}", float("nan")), 0) for e in ext],
            )
        con.print(pe)
    extra = [
        f"{k}={metrics[k]:.3f}"
        for k in ("nn_norm/cmet", "v_norm", "val/acc_emo", "train_seconds", "samples_per_s")
        if isinstance(metrics.get(k), int | float)
    ]
    con.print("  ".join(extra))


#: top-level commands (``cmet train``, ``cmet evaluate``)
app = typer.Typer()


@app.command("train", context_settings={"allow_extra_args": False})
def train_cmd(
    overrides: list[str] = typer.Argument(None, help="Hydra overrides, e.g. model=cmet_paper train.steps=10"),
    out_dir: Path = typer.Option(
        None, "--out-dir", help="run folder (default: paths.runs_dir/<data>-<model>-<hash>)"
    ),
) -> None:
    """Train C-MET and the baselines, evaluate on held-out identities, print Acc_emo, write metrics JSON."""
    from cmet.config import compose
    from cmet.train import train

    cfg = compose(list(overrides or []))
    metrics = train(cfg, out_dir=out_dir)
    print_table(metrics, f"Acc_emo on held-out identities ({cfg.data.source}, model={cfg.model.d_model}d)")
    typer.echo(f"metrics: {Path(metrics['out_dir']) / 'metrics.json'}")
    typer.echo(f"bundle:  {metrics['bundle_dir']}")


@app.command("evaluate")
def evaluate_cmd(
    bundle_dir: Path = typer.Argument(..., help="a model bundle folder (written by cmet train)"),
    overrides: list[str] = typer.Argument(None, help="Hydra overrides for the data / eval config"),
    out_dir: Path = typer.Option(
        None, "--out-dir", help="where to write metrics JSON and confusion matrices"
    ),
) -> None:
    """Evaluate a bundle (and its baselines) on the held-out identities of the configured data."""
    from cmet.config import compose
    from cmet.data import build_feature_set
    from cmet.evaluate import evaluate
    from cmet.model.bundle import ModelBundle

    cfg = compose(list(overrides or []))
    bundle = ModelBundle.load(bundle_dir)
    fs = build_feature_set(cfg)
    out = Path(out_dir) if out_dir else Path(bundle_dir).parent / "evaluation"
    metrics = evaluate(bundle, fs, cfg, out_dir=out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2, default=str))
    print_table(metrics, f"Acc_emo of {bundle_dir} ({cfg.data.source})")
    typer.echo(f"metrics: {out / 'metrics.json'}")
