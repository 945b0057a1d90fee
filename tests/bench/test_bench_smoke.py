"""Smoke test of the bench machinery on tiny settings (the figures themselves are meaningless here)."""

from __future__ import annotations

import json

import pytest


def test_timing_and_tables():
    from bench.common import fmt_pct_sd, md_table, mean_sd, time_it

    calls = []
    t = time_it(lambda: calls.append(1), repeats=3, warmup=2)
    assert len(calls) == 5 and t.n == 3 and t.p25_s <= t.median_s <= t.p75_s
    assert "IQR" in t.fmt()
    assert mean_sd([0.5, 1.0]) == pytest.approx((0.75, 0.35355339), rel=1e-6)
    assert fmt_pct_sd([0.5, 1.0]) == "75.0 ± 35.4"
    assert fmt_pct_sd([float("nan")]) == "n/a"
    tab = md_table(["a", "b"], [[1, 0.5], ["x", 12.34]]).splitlines()
    assert tab[0] == "| a | b |" and tab[2] == "| 1 | 0.500 |" and tab[3] == "| x | 12.3 |"


def test_fixed_mapping_takes_the_dominant_emotion():
    from bench.extended import fixed_mapping

    m = fixed_mapping(
        {"charismatic": {"happy": 0.6, "surprised": 0.4}, "empathetic": {"sad": 0.5, "happy": 0.5}}
    )
    assert m == {"charismatic": "happy", "empathetic": "happy"}


def test_sections_without_release_skip_cleanly_and_unknown_section_is_refused(tmp_path):
    from bench.run import main

    assert main(["--only", "nope", "--out", str(tmp_path)]) == 2
    rc = main(
        ["--only", "pixel,extended", "--no-release", "--out", str(tmp_path), "--work", str(tmp_path / "w")]
    )
    assert rc == 0
    for name in ("pixel", "extended"):
        d = json.loads((tmp_path / f"{name}.json").read_text())
        assert "../shared" in d["skipped"]
        assert "Skipped" in (tmp_path / f"{name}.md").read_text()


def test_accuracy_section_on_tiny_data(tmp_path):
    """The accuracy machinery end to end: train (cached run folder), evaluate at several k, tables."""
    from bench import accuracy_generated
    from bench.context import Ctx

    ctx = Ctx(
        quick=True,
        out=tmp_path,
        work=tmp_path / "work",
        data_override="simulator",
        settings=dict(variants=("full",), ks=(1, 3), gen_steps=3, batch=16, n_draws=1),
    )
    sec = accuracy_generated.run(ctx)
    d = sec.data
    assert set(d["k_sweep"]) == {1, 3}
    for m in ("cmet", "label", "reference", "oracle"):
        assert 0.0 <= d["methods"][m] <= 1.0
    # the oracle is handed the true semantic vector: it must beat chance by far even untrained
    assert d["methods"]["oracle"] > 0.5
    assert "| method |" in sec.markdown and "Reproduce" in sec.markdown
    # a second call reuses the finished run instead of training again
    from bench.accuracy_generated import overrides
    from bench.context import train_cached

    runs = list((tmp_path / "work" / "runs").iterdir())
    assert len(runs) == 1 and (runs[0] / "bundle" / "bundle.json").is_file()
    again = train_cached(ctx, overrides(ctx, "full"), None, "gen-simulator-full")
    assert again["cached"] is True and again["acc_emo/cmet"] == d["methods"]["cmet"]


def test_realism_markdown_and_frontier_plot(tmp_path):
    """The realism section's report from figures (no release data): table, targets (a sharpness
    floor among them), the 1080p and portrait tables, frontier line and image."""
    from bench.realism import frontier_plot, markdown

    edit = dict(
        mouth_colour=0.1, identity_median=0.35, identity_p90=0.5, flicker=1.1, render_s_per_frame=0.007,
        folds_warp=1.0, folds_left=0.0, sharpness=0.9, teeth_stretch=1.01,
    )  # fmt: skip
    rows = [
        dict(gain=g, emotion=e, identity_median=i, judge_acc=a)
        for g, e, i, a in (
            (1.0, "happy", 0.32, 0.86),
            (1.6, "happy", 0.42, 0.99),
            (1.0, "contempt", 0.1, None),
        )
    ]
    fr = {
        "gains": [1.0, 1.6],
        "rows": rows,
        "all": [
            dict(gain=1.0, identity_worst=0.32, judge_acc=0.86),
            dict(gain=1.6, identity_worst=0.42, judge_acc=0.99),
        ],
        "default_gain": 1.6,
    }
    res = {
        "natural_identity_median": 0.17,
        "other_recording_identity_median": 0.3,
        "input_vs_itself": dict(mouth_colour=0.0, n_open=52, identity_median=0.0, flicker=1.0),
        "edits": {
            "happy": dict(edit, judge_acc=0.99, sharpness=0.5),
            "contempt": dict(edit, identity_median=0.2, judge_acc=None),
        },
        "frontier": fr,
        "hd": {"frames": 60, "edits": {"happy": dict(edit, judge_acc=0.5)}},
        "portraits": {
            "p.png": {"happy": dict(identity=0.3, sharpness=0.9, interior_px=300, interior_grey_sd=31.0)}
        },
    }
    md = markdown(res, "line")
    assert "| happy | 0.50 | 1.010 | 0.100 | 0.350 (p90 0.500) | 1.10 | 100 -> 0 | 7 | 99 | NOT met |" in md
    assert "| contempt | 0.90 | 1.010 | 0.100 | 0.200 (p90 0.500) | 1.10 | 100 -> 0 | 7 | n/a | met |" in md
    assert "| happy | 0.90 | 1.010 | 0.100 | 0.350 | 50 |" in md  # the 1080p table
    assert "| p.png | happy | 0.300 | 0.90 | 300 | 31.0 |" in md
    assert "gain 1.6: worst identity 0.420 / FER 99.0%" in md and "another MEAD recording" in md
    png = frontier_plot(fr, tmp_path / "f.png")
    assert png.is_file() and png.stat().st_size > 10_000
