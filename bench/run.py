"""``make bench`` / ``python -m bench.run [--only a,b] [--quick] [--fresh] [--out DIR]``.

Runs the sections in order, prints each table, writes ``<out>/<section>.md|.json`` (+ images) and
``<out>/README.md`` (the main table, ours beside the paper's, with links to the rest). A section that
cannot run here (no ``../shared``) is skipped with the reason in the output; a section that fails is
reported with its error, the others still run, and the exit code is 1.
"""

from __future__ import annotations

import argparse
import importlib
import json
import time
import traceback
from pathlib import Path

from bench.common import RESULTS, hardware, load_average, md_table, pct

SECTIONS = (
    "accuracy_real",
    "extended",
    "pixel",
    "realism",
    "face",
    "accuracy_generated",
    "speed",
    "service",
    "video",
)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.splitlines()[0])
    ap.add_argument("--only", default=None, help=f"comma-separated sections of {', '.join(SECTIONS)}")
    ap.add_argument(
        "--quick", action="store_true", help="tiny settings (smoke test): figures are meaningless"
    )
    ap.add_argument(
        "--fresh", action="store_true", help="retrain instead of reusing cached runs in .cmet/bench"
    )
    ap.add_argument("--out", default=None, help=f"results folder (default {RESULTS})")
    ap.add_argument("--data", default=None, help="data source of the generated track (default: generated)")
    ap.add_argument("--no-release", action="store_true", help="behave as if ../shared were absent")
    ap.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=JSON",
        help="override one setting of bench.context.FULL/QUICK, e.g. --set steps=300 --set 'folds=[\"W009\"]'",
    )
    ap.add_argument("--work", default=None, help="cache of trained runs and features (default .cmet/bench)")
    ap.add_argument(
        "--summary",
        action="store_true",
        help="only re-render <out>/README.md from the stored section results and summary.json",
    )
    a = ap.parse_args(argv)
    if a.summary:
        out = Path(a.out) if a.out else RESULTS
        head = json.loads((out / "summary.json").read_text()) if (out / "summary.json").is_file() else {}
        head.setdefault("hardware", "?")
        head.setdefault("load_average_start", "?")
        head.setdefault("sections", {})
        out.mkdir(parents=True, exist_ok=True)
        (out / "README.md").write_text(summary_md({}, head, out))
        print(f"wrote {out / 'README.md'}")
        return 0

    import torch
    from rich.console import Console
    from rich.markdown import Markdown

    from bench.context import Ctx, Skip, find_release
    from cmet.env import configure_local_env

    configure_local_env()
    torch.set_num_threads(1)
    console = Console()
    only = SECTIONS if not a.only else tuple(x.strip() for x in a.only.split(",") if x.strip())
    bad = [x for x in only if x not in SECTIONS]
    if bad:
        console.print(f"[red]unknown section(s) {bad}; known: {list(SECTIONS)}")
        return 2
    out = Path(a.out) if a.out else RESULTS
    out.mkdir(parents=True, exist_ok=True)
    ctx = Ctx(
        quick=a.quick,
        out=out,
        release=None if a.no_release else find_release(),
        fresh=a.fresh,
        data_override=a.data,
    )
    if a.work:
        ctx.work = Path(a.work)
    if a.set:
        from bench.context import FULL

        ctx.settings = {}
        for item in a.set:
            key, _, val = item.partition("=")
            if key not in FULL:
                console.print(f"[red]--set {key}: unknown setting; known: {sorted(FULL)}")
                return 2
            try:
                ctx.settings[key] = json.loads(val)
            except json.JSONDecodeError:
                ctx.settings[key] = val
        console.print(f"settings overridden: {ctx.settings}")
    ctx.work.mkdir(parents=True, exist_ok=True)
    t_all = time.perf_counter()
    head = {
        "hardware": hardware(),
        "load_average_start": load_average(),
        "quick": a.quick,
        "release": str(ctx.release) if ctx.release else None,
        "sections": {},
    }
    console.rule(f"bench{' (QUICK: smoke settings, figures meaningless)' if a.quick else ''}")
    console.print(head["hardware"])
    console.print(head["load_average_start"])
    if ctx.release is None:
        console.print(
            "[yellow]../shared release data absent: real-speech, extended, pixel, speed and service "
            "sections are skipped"
        )
    failed = False
    results = {}
    for name in SECTIONS:
        if name not in only:
            continue
        console.rule(name)
        t = time.perf_counter()
        mod = importlib.import_module(f"bench.{name}")
        try:
            sec = mod.run(ctx)
        except Skip as e:
            from bench.context import Section

            sec = Section(
                name, mod.TITLE, f"## {mod.TITLE}\n\nSkipped: {e}.\n", {"skipped": str(e)}, skipped=str(e)
            )
        except Exception as e:  # one failing section must not hide the others' figures
            from bench.context import Section

            failed = True
            tb = traceback.format_exc()
            console.print(f"[red]{name} failed: {type(e).__name__}: {e}")
            sec = Section(
                name,
                mod.TITLE,
                f"## {mod.TITLE}\n\nFAILED: {type(e).__name__}: {e}\n",
                {"error": f"{type(e).__name__}: {e}", "traceback": tb[-4000:]},
                skipped="failed",
            )
        sec.seconds = time.perf_counter() - t
        sec.data["section_seconds"] = sec.seconds
        sec.data["quick"] = a.quick
        results[name] = sec
        from bench.common import write_result

        write_result(name, sec.markdown + f"\nSection wall time: {sec.seconds:.0f} s.", sec.data, out)
        console.print(Markdown(sec.markdown))
        console.print(f"[dim]{name}: {sec.seconds:.0f} s -> {out / (name + '.md')}")
        head["sections"][name] = {"seconds": sec.seconds, "skipped": sec.skipped}
    head["wall_seconds"] = time.perf_counter() - t_all
    head["load_average_end"] = load_average()
    readme = summary_md(results, head, out)
    if not a.only:
        (out / "README.md").write_text(readme)
        (out / "summary.json").write_text(json.dumps(head, indent=1, default=str))
    console.rule("summary")
    console.print(Markdown(readme))
    return 1 if failed else 0


def _load(out: Path, name: str, results: dict) -> dict | None:
    if name in results:
        return None if results[name].skipped else results[name].data
    p = out / f"{name}.json"  # a section from an earlier run (``--only``)
    if p.is_file():
        d = json.loads(p.read_text())
        return None if d.get("skipped") or d.get("error") else d
    return None


def summary_md(results: dict, head: dict, out: Path) -> str:
    """The main table (ours beside the paper's) and the links; used for bench/results/README.md."""
    from bench.common import fmt_pct_sd
    from bench.evalkit import PAPER_ABLATION, PAPER_ACC, PAPER_ACC_SRC, PAPER_NAMES

    real, gen, pix = (
        _load(out, "accuracy_real", results),
        _load(out, "accuracy_generated", results),
        _load(out, "pixel", results),
    )
    ext, spd, svc, face = (
        _load(out, "extended", results),
        _load(out, "speed", results),
        _load(out, "service", results),
        _load(out, "face", results),
    )
    rows = []
    for m in ("cmet", "label", "speech_direct", "reference", "oracle"):
        r = fmt_pct_sd(real["methods"][m]["per_fold"]) if real else "n/a"
        g = pct(gen["methods"].get(m)) if gen else "n/a"
        p = pix["summary"].get(m) if pix else None
        ptxt = f"{pct(p['acc'])} / {100 * p['rise']:+.1f}" if p else "n/a"
        rows.append(
            [
                PAPER_NAMES[m],
                r,
                g,
                ptxt,
                "n/a" if PAPER_ACC[m] is None else f"{PAPER_ACC[m]:.2f} ({PAPER_ACC_SRC[m]})",
            ]
        )
    if pix:
        u = pix["summary"]["unedited"]
        rows.append(["unedited video", "", "", f"{pct(u['acc'])} / +0.0", ""])
    main = md_table(
        [
            "method",
            "real speech, AU space: Acc_emo % (LOSO, mean ± sd)",
            "generated set: Acc_emo %",
            "real video, FER judge: Acc_emo % / rise p(target) pp",
            "paper MEAD Acc_emo %",
        ],
        rows,
    )
    abl = ""
    if real:
        names = {"recon": "L_recon", "recon+cnt": "+L_cnt", "full": "+L_cnt+L_dir"}
        abl = md_table(
            ["C-MET loss", "ours real speech Acc_emo %", "paper %"],
            [
                [names[v], fmt_pct_sd(real["ablation"][v]), PAPER_ABLATION[v]]
                for v in names
                if v in real["ablation"]
            ],
        )
    lines = [
        f"# Benchmarks{' (QUICK smoke run: figures meaningless)' if head.get('quick') else ''}",
        "",
        f"Measured on: {head['hardware']}; {head['load_average_start']} at the start, "
        f"{head.get('load_average_end', '?')} at the end; wall time of the whole run "
        f"{head.get('wall_seconds', 0) / 60:.1f} min. Reproduce: `make bench` (one section: "
        "`python -m bench.run --only SECTION`).",
        "",
        "Ours are measured here; the paper's figures are its own (Emotion-FAN on rendered MEAD video). "
        "In the expression space the label-based and reference-based baselines are handed the answer "
        "(the true label; a true expression of the same person): on basic emotions they are upper "
        "bounds, and C-MET's claim is to approach them from speech alone and to go where they cannot "
        "(extended emotions).",
        "",
        main,
        "",
    ]
    if abl:
        lines += ["Loss ablation (real speech):", "", abl, ""]
    if ext:
        ag = ext["agreement"]
        lines += [
            f"Extended emotions on real speech (TTS; agreement with emotion2vec+large's own label): C-MET "
            f"{pct(ag.get('cmet'))}%, speech-direct {pct(ag.get('speech_direct'))}%, label-based with a fixed "
            f"mapping {pct(ag.get('label_fixed'))}% (goal >= 85% and >= speech-direct).",
            "",
        ]
    if face:
        port, rt = face["portraits"], face["roundtrip_flow"]["summary"]
        lines += [
            f"Faces: FER top-1 on 14 rendered portraits x 6 emotions {pct(port['overall_top1'])}% "
            f"(goal >= 60%); codes round trip through the flow-refined landmarks, codes with r >= 0.9 "
            f"(mean over faces, of 19): "
            + ", ".join(f"{m} {v['n_codes_mean_ge_0.9']}" for m, v in rt.items())
            + " ([face](face.md)).",
            "",
        ]
    if spd:
        e = spd["edit"]
        lines += [
            f"Speed: whole edit of the {e['video_s']:.0f} s real video {e['timing']['median_s']:.2f} s "
            f"(median, n={e['timing']['n']}) = {e['rtf']:.2f}x real time on this CPU; paper AITV 2.643 s on a "
            "GPU.",
            "",
        ]
    if svc:
        lv = [x for x in svc["levels"] if x["endpoint"] == "edit"]
        lines += [
            "Service (edit of a 1 s clip): "
            + "; ".join(
                f"{x['clients']} clients p50 {x['p50_s'] or float('nan'):.2f} s p95 {x['p95_s'] or float('nan'):.2f} s "
                f"{x['throughput_rps']:.2f} req/s"
                for x in lv
            )
            + ".",
            "",
        ]
    lines += ["Sections: " + ", ".join(f"[{n}]({n}.md)" for n in SECTIONS if (out / f"{n}.md").is_file()), ""]
    skipped = {n: d["skipped"] for n, d in head["sections"].items() if d.get("skipped")}
    if skipped:
        lines += [f"Skipped or failed in this run: {skipped}.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
