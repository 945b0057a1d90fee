"""`cmet train` / `cmet evaluate` commands (help, and evaluate on the session's tiny bundle)."""

from __future__ import annotations

import json

from typer.testing import CliRunner


def _app():
    from cmet.cli import build_app

    return build_app()


def test_help():
    r = CliRunner()
    for cmd in ("train", "evaluate"):
        res = r.invoke(_app(), [cmd, "--help"])
        assert res.exit_code == 0, res.output
        assert "overrides" in res.output.lower()


def test_evaluate_command(tiny_run, tiny_overrides, tmp_path):
    metrics, out, cfg = tiny_run
    res = CliRunner().invoke(
        _app(),
        [
            "evaluate",
            metrics["bundle_dir"],
            *tiny_overrides,
            f"paths.work_dir={tmp_path}",
            "--out-dir",
            str(tmp_path / "ev"),
        ],
    )
    assert res.exit_code == 0, res.output
    assert "C-MET" in res.output and "speech-direct" in res.output and "n/a" in res.output
    ev = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    # same bundle, same data, same seed -> the same numbers as at the end of training
    assert abs(ev["acc_emo/cmet"] - metrics["acc_emo/cmet"]) < 1e-9
    assert (tmp_path / "ev" / "confusion_matrix.png").is_file()
