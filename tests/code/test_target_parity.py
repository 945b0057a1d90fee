"""One target parser: the CLI (``cmet edit --emotion/--blend``) and the service (``blend`` form field)
give the same model input, bit for bit, for every accepted spelling; bad weights are refused by both
with the documented error."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cmet.errors import DataError, UnknownEmotionError

TINY_SIM = [
    "data.identities={train: 2, val: 1, test: 1}",
    "data.clips_per_cell=3",
    "data.frames=[20, 30]",
    "data.sentences=6",
    "data.extended={}",
    "model.d_model=16",
    "model.n_layers=1",
    "model.n_heads=2",
    "model.ff_dim=32",
    "model.conv_channels=4",
    "model.dropout=0.0",
    "train.batch_size=8",
    "train.steps=4",
    "train.warmup_steps=1",
    "train.eval_every=100",
    "train.checkpoint_every=100",
    "train.quiet=true",
    "train.num_threads=1",
    "train.final_eval=false",
    "device=cpu",
]

SPELLINGS = [
    "happy=0.7,surprised=0.3",
    "happy:0.7,surprised:0.3",
    " happy = 7 , surprised = 3 ",
    '{"happy": 0.7, "surprised": 0.3}',
    {"happy": 0.7, "surprised": 0.3},
]
#: (text, the same as a mapping: JSON string and the dict the service receives; None: text only)
BAD_WEIGHTS = [
    ("happy=nan", {"happy": float("nan")}),
    ("happy=inf", {"happy": float("inf")}),
    ("happy=-0.5", {"happy": -0.5}),
    ("happy=1e308", {"happy": 1e308}),
    ("happy=0,surprised=0", {"happy": 0, "surprised": 0}),
    ("happy=x", {"happy": "x"}),
    ("happy=0.5,happy=0.5", None),
]


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    """The service's engine on a bundle trained (a few steps) on the feature simulator."""
    from cmet.config import compose
    from cmet.train import train
    from serving.engine import Engine

    work = tmp_path_factory.mktemp("parity")
    cfg = compose([f"paths.work_dir={work}", *TINY_SIM])
    bundle_dir = train(cfg, out_dir=work / "run")["bundle_dir"]
    return Engine(bundle_dir, device="cpu")


@pytest.fixture(scope="module")
def codes(engine):
    return np.random.default_rng(0).normal(0, 0.1, (12, engine.bundle.d_expr)).astype(np.float32)


def _api_target(engine, *, emotion=None, blend=None):
    from serving.inputs import Limits, parse_target

    return parse_target(
        emotion=emotion,
        blend=blend,
        target_speech=None,
        target_features=None,
        known=engine.emotions,
        d_speech=engine.d_speech,
        limits=Limits(),
    )


def _cli_target(engine, spelling):
    from cmet.target import Target
    from flows.commands.edit import cli_target

    if isinstance(spelling, dict):  # what a library caller passes to edit_video
        return Target.of(spelling)
    return cli_target(blend=spelling, d_speech=engine.d_speech)


def _offsets(engine, codes, value):
    return engine.bundle.predict_offsets(codes, value, intensity=1.0)


def test_every_spelling_gives_the_same_offsets_on_the_cli_and_the_api(engine, codes):
    from cmet.target import resolve_target
    from flows.commands.edit import cli_target

    reference = None
    for spelling in SPELLINGS:
        cli_value, _ = resolve_target(_cli_target(engine, spelling), engine.bundle)
        api_value, _ = engine.resolve(_api_target(engine, blend=spelling))
        assert cli_value == pytest.approx({"happy": 0.7, "surprised": 0.3}), spelling
        cli, api = _offsets(engine, codes, cli_value), _offsets(engine, codes, api_value)
        assert np.array_equal(cli, api), spelling
        reference = cli if reference is None else reference
        assert np.allclose(cli, reference, atol=1e-6), spelling
    assert np.abs(reference).max() > 0  # a real edit, not zeros
    # a single name: --emotion happy, the API's emotion field and its blend field "happy"
    by_name = [
        resolve_target(cli_target(emotion="happy", d_speech=engine.d_speech), engine.bundle)[0],
        engine.resolve(_api_target(engine, emotion="happy"))[0],
        engine.resolve(_api_target(engine, blend="happy"))[0],
        resolve_target(cli_target(emotion='{"happy": 2}', d_speech=engine.d_speech), engine.bundle)[0],
    ]
    first = _offsets(engine, codes, by_name[0])
    for value in by_name[1:]:
        assert np.array_equal(_offsets(engine, codes, value), first)
    assert not np.allclose(first, reference)  # happy alone is not the blend


@pytest.mark.parametrize("bad,mapping", BAD_WEIGHTS)
def test_bad_weights_are_refused_by_both_paths(engine, bad, mapping):
    from flows.commands.edit import cli_target

    with pytest.raises(DataError, match="blend"):
        cli_target(blend=bad, d_speech=engine.d_speech)
    with pytest.raises(DataError, match="blend"):
        cli_target(emotion=bad, d_speech=engine.d_speech)
    with pytest.raises(DataError, match="blend"):
        _api_target(engine, blend=bad)
    if mapping is not None:  # JSON (Python writes NaN / Infinity) and the dict the service receives
        with pytest.raises(DataError, match="blend"):
            _api_target(engine, blend=json.dumps(mapping))
        with pytest.raises(DataError, match="blend"):
            _api_target(engine, blend=mapping)
        with pytest.raises(DataError, match="blend"):
            _cli_target(engine, mapping)


def test_unknown_emotion_is_the_same_error_on_both_paths(engine):
    from cmet.target import resolve_target
    from flows.commands.edit import cli_target

    for spelling in ("joyful", "happy=0.5,joyful=0.5", '{"joyful": 1}'):
        with pytest.raises(UnknownEmotionError, match="joyful"):
            resolve_target(cli_target(emotion=spelling, d_speech=engine.d_speech), engine.bundle)
        field = {"emotion": spelling} if spelling == "joyful" else {"blend": spelling}
        with pytest.raises(UnknownEmotionError, match="joyful"):
            _api_target(engine, **field)


def test_parse_blend_semantics():
    from cmet.target import Target, parse_blend

    assert parse_blend("happy") == {"happy": 1.0}
    assert parse_blend("happy=3,sad=1") == {"happy": 0.75, "sad": 0.25}
    assert parse_blend({"happy": 1, "sad": 0}) == {"happy": 1.0, "sad": 0.0}
    assert parse_blend("happy=100") == {"happy": 1.0}
    for bad in ("", "happy=1,happy=2", "=1", "happy=1,", "[1, 2]", "{}", '{"happy": true}'):
        with pytest.raises(DataError):
            parse_blend(bad, known=["happy", "sad"])
    with pytest.raises(UnknownEmotionError):
        parse_blend("happy=1,joyful=1", known=["happy", "sad"])
    t = Target.of("happy:0.25,sad:0.75")
    assert t.kind == "blend" and t.weights == {"happy": 0.25, "sad": 0.75}
    assert t.describe() == "happy:0.25+sad:0.75" and Target.of("sad").describe() == "sad"
    with pytest.raises(DataError):
        Target("name", emotion="happy", blend=(("sad", 1.0),))
