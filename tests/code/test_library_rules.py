"""Code rules of the library: no orchestration or MLflow imports in cmet/, no bare .cuda(), lazy imports."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LIB = ROOT / "cmet"


def _sources():
    return sorted(LIB.rglob("*.py"))


def test_library_imports_no_orchestration():
    # mlflow too: a bundle comes out of the registry in flows/ (flows.registry.fetch_bundle) only
    bad = re.compile(r"^\s*(from|import)\s+(prefect|bentoml|optuna|great_expectations|mlflow)\b", re.M)
    offenders = [str(p.relative_to(ROOT)) for p in _sources() if bad.search(p.read_text())]
    assert not offenders, offenders


def test_no_bare_cuda_calls():
    offenders = [
        str(p.relative_to(ROOT)) for p in _sources() if re.search(r"[\w)\]]\.cuda\(\s*\)", p.read_text())
    ]
    assert not offenders, offenders


def test_no_pickle_in_model_files():
    for p in (LIB / "model").glob("*.py"):
        text = p.read_text()
        assert "import pickle" not in text and "allow_pickle=True" not in text, p


def test_cli_and_model_command_import_lazily():
    code = (
        "import sys, cmet.cli, cmet.commands.model, cmet.data, cmet.train, cmet.evaluate, cmet.infer;"
        "heavy = [m for m in ('torch', 'sklearn', 'matplotlib', 'hydra') if m in sys.modules];"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "", f"imported at import time: {out.stdout.strip()}"
