"""The typed config schemas (cmet/conf.py) agree with the YAML, and a bad value is one clear error."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from cmet.conf import SCHEMAS, GatesConfig
from cmet.config import compose
from cmet.errors import ConfigError


@pytest.fixture(scope="module")
def cfg():
    return compose([])


def _defaults(schema: type) -> dict:
    return OmegaConf.to_container(OmegaConf.structured(schema), resolve=False)


@pytest.mark.parametrize("group", sorted(SCHEMAS))
def test_every_dataclass_default_equals_its_yaml_value(cfg, group):
    assert OmegaConf.get_type(cfg[group]) is SCHEMAS[group], f"configs/{group} does not use base_{group}"
    yaml = OmegaConf.to_container(cfg[group], resolve=False)
    want = _defaults(SCHEMAS[group])
    assert set(yaml) == set(want)
    for key in want:  # one key at a time, so a drift names its key
        assert yaml[key] == want[key], f"{group}.{key}: YAML {yaml[key]!r} != dataclass {want[key]!r}"


def test_the_schema_fields_are_typed_not_any():
    def walk(schema):
        for f in dataclasses.fields(schema):
            assert f.type not in ("Any", "object"), f"{schema.__name__}.{f.name} is untyped"
            if dataclasses.is_dataclass(f.default_factory if callable(f.default_factory) else None):
                walk(f.default_factory)

    for schema in SCHEMAS.values():
        walk(schema)


@pytest.mark.parametrize(
    "override, words",
    [
        ("face.render_gain=abc", ["face.render_gain", "Float"]),
        ("train.loss.dir_squared=maybe", ["train.loss.dir_squared", "bool"]),
        ("serving.port=http", ["serving.port", "Integer"]),
        ("gates.absolute.latency.max=fast", ["gates.absolute.latency.max", "Float"]),
        ("face.video_jaw_gian=0.5", ["video_jaw_gian", "FaceConfig"]),
        ("model=nope", ["model/nope"]),
    ],
)
def test_a_wrong_override_is_one_config_error_naming_it(override, words):
    with pytest.raises(ConfigError) as e:
        compose([override])
    for w in words:
        assert w in str(e.value), str(e.value)


def test_overrides_and_other_options_still_compose():
    c = compose(["model=cmet_paper", "train=paper", "face.video_jaw_gain=1", "experiment=fast"])
    assert c.model.d_model == 1024 and c.train.loss.recon == "focal"
    assert c.face.video_jaw_gain == 1.0 and isinstance(c.face.video_jaw_gain, float)
    # experiment=fast lowers a gate: the typed entry keeps its other fields
    assert c.gates.absolute.acc_emo.min == 0.0 and c.gates.absolute.acc_emo.required is True


def test_gates_default_is_a_typed_dict_of_checks():
    g = OmegaConf.structured(GatesConfig)
    assert g.absolute.latency.max == 50.0 and g.absolute.latency.min is None


ROOT = Path(__file__).resolve().parents[2]


def _py(*dirs: str):
    for d in dirs:
        yield from (ROOT / d).rglob("*.py")


def test_the_library_never_composes():
    """Entry points (CLI commands, flows, serving, bench, tests) compose; cmet's library modules take cfg."""
    entry = {ROOT / "cmet" / "config.py", ROOT / "cmet" / "cli.py"}
    offenders = [
        str(p.relative_to(ROOT))
        for p in _py("cmet")
        if p not in entry and "commands" not in p.parts and re.search(r"\bcompose\(", p.read_text())
    ]
    assert not offenders, offenders


def test_no_get_with_a_default_on_a_composed_config():
    """``cfg.get("key", default)`` on a typed group (or the root) hides the schema behind a default
    that drifts from the YAML; the typed groups always hold their keys."""
    groups = "|".join(SCHEMAS)
    pat = re.compile(rf"(?<![\w.])cfg(\.({groups})(\.\w+)*\.get\(|\.get\(\"({groups}|seed|device)\")")
    offenders = [
        f"{p.relative_to(ROOT)}:{i}"
        for p in _py("cmet", "flows", "serving")
        if p.name != "conf.py"
        for i, line in enumerate(p.read_text().splitlines(), 1)
        if pat.search(line)
    ]
    assert not offenders, offenders
