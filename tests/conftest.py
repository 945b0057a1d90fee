"""Shared fixtures: composed configs (Hydra compose API), the ../shared data, a temp project root."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("CMET_SHARED", ROOT.parent / "shared"))
RELEASE = SHARED / "data" / "cmet_release"


def pytest_configure(config):
    # keep every store of the test session inside the project's working folder
    from cmet.env import configure_local_env

    configure_local_env(ROOT)
    import torch

    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


def pytest_collection_modifyitems(config, items):
    """Every test that needs ../shared (the ``release_dir`` fixture, directly or through another
    fixture) carries the ``shared`` marker; where ../shared is absent those tests are skipped, each
    named with the reason in the ``-ra`` summary."""
    missing = not RELEASE.is_dir()
    for item in items:
        if "release_dir" in getattr(item, "fixturenames", ()) and item.get_closest_marker("shared") is None:
            item.add_marker(pytest.mark.shared)
        if missing and item.get_closest_marker("shared") is not None:
            item.add_marker(
                pytest.mark.skip(reason=f"shared: {item.name} needs ../shared ({RELEASE} absent)")
            )


@pytest.fixture(scope="session")
def release_dir() -> Path:
    """The authors' release data in ../shared (tests using it are marked ``shared``, see above)."""
    if not RELEASE.is_dir():
        pytest.skip(f"shared: ../shared release data not present at {RELEASE}")
    return RELEASE


@pytest.fixture(scope="session")
def require():
    """require(ok, what): a tool a slow test needs (a browser, PostgreSQL...). Missing -> the test is
    skipped with ``what`` as the reason; under ``make test-full`` (CMET_TEST_FULL=1, which installs the
    tools first) it fails instead, so a broken install is never hidden by a skip."""

    def _require(ok: object, what: str) -> None:
        if ok:
            return
        if os.environ.get("CMET_TEST_FULL") == "1":
            pytest.fail(
                f"{what}; `make test-full` needs it (it runs `make setup` and `make test-deps` first)"
            )
        pytest.skip(what)

    return _require


@pytest.fixture
def compose_cfg(tmp_path):
    """compose_cfg(*overrides) -> DictConfig with all run outputs under tmp_path."""
    from cmet.config import compose

    def _compose(*overrides: str):
        return compose([f"paths.work_dir={tmp_path}/work", *overrides])

    return _compose
