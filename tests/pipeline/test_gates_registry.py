"""Gates (pure) and the registry's alias moves, promote and rollback (real MLflow, SQLite in tmp)."""

from __future__ import annotations

import pytest

from cmet.config import compose
from flows import registry as R
from flows.gates import evaluate_gates

GOOD = {
    "acc_emo/cmet": 0.8,
    "acc_emo_ext/cmet": 0.5,
    "acc_emo/speech_direct": 0.5,
    "lips_kept": 1.0,
    "latency_ms_per_frame": 1.0,
}


def test_gates_pass_and_fail_reasons():
    g = compose([]).gates
    rep = evaluate_gates(GOOD, g)
    assert rep.passed, rep.summary()
    worse = dict(GOOD, **{"acc_emo/cmet": 0.45})  # above the absolute bar, below speech-direct
    rep = evaluate_gates(worse, g)
    assert not rep.passed and [c.name for c in rep.failed] == ["beats_speech_direct"]
    rep = evaluate_gates(GOOD, g, champion_metrics=dict(GOOD, **{"acc_emo/cmet": 0.9}), champion_version="3")
    assert [c.name for c in rep.failed] == ["not_worse_than_champion"], rep.summary()
    rep = evaluate_gates(dict(GOOD, latency_ms_per_frame=500.0), g)
    assert [c.name for c in rep.failed] == ["latency"]
    missing = {k: v for k, v in GOOD.items() if k != "acc_emo_ext/cmet"}
    assert [c.name for c in evaluate_gates(missing, g).failed] == ["acc_emo_extended"]
    assert evaluate_gates(missing, compose(["gates.missing_metric=skip"]).gates).passed
    no_lips = {k: v for k, v in GOOD.items() if k != "lips_kept"}  # lips_kept is required: false
    assert evaluate_gates(no_lips, g).passed
    assert not evaluate_gates(dict(GOOD, lips_kept=0.5), g).passed
    assert rep.tags()["gate.passed"] == "false"


@pytest.fixture
def mlclient(tmp_path):
    import mlflow

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    mlflow.set_tracking_uri(uri)
    exp = mlflow.create_experiment("t", artifact_location=str(tmp_path / "art"))
    runs = []
    for i in range(3):
        with mlflow.start_run(experiment_id=exp) as r:
            mlflow.log_text(f"model {i}", "bundle/x.txt")
            runs.append(r.info.run_id)
    return R.client(uri), runs


def test_registry_gate_promote_rollback(mlclient):
    c, runs = mlclient
    name = "m"
    v1, new = R.register_candidate(c, name, f"runs:/{runs[0]}/bundle", runs[0], {"bundle_hash": "a"}, "a")
    assert new and v1 == "1"
    assert R.register_candidate(c, name, f"runs:/{runs[0]}/bundle", runs[0], {"bundle_hash": "a"}, "a") == (
        "1",
        False,
    )
    R.apply_gate(c, name, v1, passed=True)
    assert R.alias_version(c, name, R.CHAMPION) == "1"
    # a failed candidate is registered, moves nothing
    gate_tags = {
        "bundle_hash": "b",
        "gate.passed": "false",
        "gate.latency": "fail (512.0)",
        "gate.acc_emo": "pass (0.8)",
    }
    v2, _ = R.register_candidate(c, name, f"runs:/{runs[1]}/bundle", runs[1], gate_tags, "b")
    out = R.apply_gate(c, name, v2, passed=False)
    assert out["after"] == out["before"] and R.alias_version(c, name, R.CHAMPION) == "1"
    assert c.get_model_version(name, v2).tags["decision"] == "rejected by gate"
    # a passing one becomes champion, previous kept in a tag; rollback restores it
    v3, _ = R.register_candidate(c, name, f"runs:/{runs[2]}/bundle", runs[2], {"bundle_hash": "c"}, "c")
    R.apply_gate(c, name, v3, passed=True)
    assert R.alias_version(c, name, R.CHAMPION) == "3"
    assert c.get_model_version(name, "3").tags["previous_champion"] == "1"
    assert R.rollback(c, name) == ("3", "1")
    assert R.alias_version(c, name, R.CHAMPION) == "1"
    with pytest.raises(R.RegistryError, match="no previous champion"):
        R.rollback(c, name)
    # a person's decision: a version that failed its gate needs force, and the override is recorded
    with pytest.raises(
        R.RegistryError, match=r"v2 failed its promotion gate \(latency fail \(512.0\)\).*--force"
    ):
        R.promote(c, name, "2")
    assert R.alias_version(c, name, R.CHAMPION) == "1"
    assert R.promote(c, name, "2", force=True) == {"previous": "1", "overridden": ["latency fail (512.0)"]}
    assert R.alias_version(c, name, R.CHAMPION) == "2"
    assert c.get_model_version(name, "2").tags["promoted_over_gate"] == "latency fail (512.0)"
    assert R.rollback(c, name) == ("2", "1")
    R.apply_gate(c, name, "3", passed=True, mode="challenger")
    assert R.alias_version(c, name, R.CHALLENGER) == "3" and R.alias_version(c, name, R.CHAMPION) == "1"
    with pytest.raises(R.RegistryError, match="no version"):
        R.promote(c, name, "99")
    rows = R.list_versions(c, name)
    assert [r.version for r in rows] == ["1", "2", "3"] and "champion" in rows[0].aliases


def test_cli_promote_refuses_a_failed_version_without_force(mlclient, tmp_path, capsys):
    from cmet.cli import run_app
    from flows.cli import app

    c, runs = mlclient
    ov = [f"pipeline.tracking_uri={c.tracking_uri}", "pipeline.registered_model=m"]
    for i, passed in enumerate(("true", "false")):
        R.register_candidate(
            c, "m", f"runs:/{runs[i]}/bundle", runs[i], {"gate.passed": passed, "gate.lips": "fail (0.1)"}
        )
    R.apply_gate(c, "m", "1", passed=True)
    with pytest.raises(SystemExit) as e:
        run_app(app, ["promote", "2", *ov])
    assert e.value.code == 2 and "failed its promotion gate (lips fail (0.1))" in capsys.readouterr().err
    assert R.alias_version(c, "m", R.CHAMPION) == "1"
    run_app(app, ["promote", "2", "--force", *ov])
    out = capsys.readouterr().out
    assert "overriding the failed gate of v2: lips fail (0.1)" in out and "champion v1 -> v2" in out
    assert R.alias_version(c, "m", R.CHAMPION) == "2"
