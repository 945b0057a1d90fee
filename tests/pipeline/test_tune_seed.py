"""The tuning study's sampler is seeded: the pipeline's worker proposes the same trials on every run
and machine (a fresh clone's `make run` tunes what the last one did); other workers differ."""

from __future__ import annotations

import pytest


def _first_points(tmp_path, name: str, worker: str, n: int = 3) -> list[float]:
    from cmet.config import compose
    from flows.tune import open_study, worker_seed

    cfg = compose([f"pipeline.tune.storage=sqlite:///{tmp_path / name}.db"])
    study = open_study(cfg, "s", seed=worker_seed(cfg, worker))
    points = []
    for _ in range(n):
        trial = study.ask()
        points.append(trial.suggest_float("lr", 1e-4, 1e-2, log=True))
        study.tell(trial, 0.5)
    return points


def test_the_pipeline_worker_samples_the_same_trials_every_run(tmp_path):
    pytest.importorskip("optuna")
    a = _first_points(tmp_path, "a", "pipeline")
    b = _first_points(tmp_path, "b", "pipeline")
    assert (
        a == b
    )  # same seed, same process: the same draws (reproducibility on one machine, not a cross-CPU float check)
    assert _first_points(tmp_path, "c", "w1") != a
