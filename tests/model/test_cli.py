"""The ``cmet`` command: one Typer app of module-level commands (help, overrides, errors, evaluate)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner


def _app():
    from cmet.cli import app

    return app


def _leaves(group, path=()):
    for name, cmd in group.commands.items():
        if hasattr(cmd, "commands"):  # a group
            yield from _leaves(cmd, (*path, name))
        else:
            yield (*path, name)


def test_help_of_every_command_of_the_console_script():
    """Every command of ``cmet`` (library and orchestration) answers --help from one root app."""
    import typer

    from flows.cli import app

    leaves = list(_leaves(typer.main.get_command(app)))
    for must in [("train",), ("edit",), ("face", "assets", "ensure"), ("speech", "prosody-ref")]:
        assert must in leaves
    for cmd in leaves:
        res = CliRunner().invoke(app, [*cmd, "--help"])
        assert res.exit_code == 0, (cmd, res.output)
        assert "Usage:" in res.output


def test_train_and_evaluate_take_overrides():
    for cmd in ("train", "evaluate"):
        res = CliRunner().invoke(_app(), [cmd, "--help"])
        assert "overrides" in res.output.lower()


def test_a_bad_override_is_one_line_and_exit_2(capsys):
    from cmet.cli import run_app

    with pytest.raises(SystemExit) as e:
        run_app(_app(), ["train", "face.render_gain=abc"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: config") and "face.render_gain" in err and "Traceback" not in err


def test_prosody_ref_prints_the_constants_of_a_feature_set(tiny_features, tmp_path):
    folder = tiny_features.save(tmp_path / "fs")
    res = CliRunner().invoke(_app(), ["speech", "prosody-ref", str(folder)])
    assert res.exit_code == 0, res.output
    ns: dict = {}
    exec(res.output, ns)  # the printed text is the Python source of the two tuples
    assert len(ns["REF_MEAN"]) == len(ns["REF_SCALE"]) == tiny_features.d_speech
    assert min(ns["REF_SCALE"]) > 0


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


def test_one_cli_style():
    """Commands are module-level Typer apps: no argparse script, no ``__main__`` block, no register()."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    entry = {root / "cmet" / "cli.py", root / "flows" / "cli.py"}
    offenders = []
    for d in ("cmet", "flows", "serving"):
        for p in (root / d).rglob("*.py"):
            text = p.read_text()
            if (
                p.name == "__main__.py"
                or "import argparse" in text
                or re.search(r"^def register\(app\b", text, re.M)
            ):
                offenders.append(str(p.relative_to(root)))
            elif p not in entry and re.search(r'^if __name__ == "__main__"', text, re.M):
                offenders.append(str(p.relative_to(root)))
    assert not offenders, offenders
