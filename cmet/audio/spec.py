"""Which speech encoder made a FeatureSet's (and so a model's) speech features.

Every FeatureSet source writes ``meta["speech_encoder"] = EncoderSpec(...).to_dict()``; training
copies it into ``bundle.json``; :func:`encoder_for_bundle` is the one function that gives the encoder
for a bundle (CLI, service, pipeline sample). Specs in use:

* ``simulated`` (the feature simulator): no encoder exists for real speech;
* ``emotion2vec+large``, 1024-d, ``{"source": "precomputed"}``: the authors' vectors, read beside
  the audio (``<dir>/emotion2vec+large_features/<stem>.npy``) or from ``.npy`` files given directly;
* anything extracted by :func:`cmet.audio.extract.extract_features`: the encoder's name, its output
  width and its config (``config["encoder"]`` = the kind of :func:`cmet.audio.encoders.get_encoder`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cmet.errors import CmetError, ModelError

SIMULATED = "simulated"
EMOTION2VEC = "emotion2vec+large"
E2V_SUBDIR = "emotion2vec+large_features"


@dataclass(frozen=True)
class EncoderSpec:
    """A speech encoder: ``name``, output width ``dim`` (= the model's D_a), ``config`` to rebuild it."""

    name: str
    dim: int
    config: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"name": self.name, "dim": int(self.dim), "config": dict(self.config)}

    @classmethod
    def from_dict(
        cls, d, where: str = "the model bundle", fix: str = "it predates encoder specs: retrain it"
    ) -> EncoderSpec:
        """``{"name", "dim", "config"}`` -> EncoderSpec. Missing or another form -> ModelError
        naming ``where`` and what to do (``fix``)."""
        if not isinstance(d, dict) or not isinstance(d.get("name"), str) or "dim" not in d:
            raise ModelError(f"{where} does not record its speech encoder (found {d!r}); {fix}")
        try:
            dim = int(d["dim"])
        except (TypeError, ValueError):
            raise ModelError(f"{where}: speech encoder width {d['dim']!r} is not a number") from None
        return cls(d["name"], dim, dict(d.get("config") or {}))

    def describe(self) -> str:
        return f"{self.name!r} ({self.dim}-d)"


def spec_of(encoder, dim: int, config: dict) -> EncoderSpec:
    """The spec of an encoder built from ``config`` whose output is ``dim`` wide."""
    return EncoderSpec(str(encoder.name), int(dim), dict(config))


def encoder_for_bundle(bundle):
    """The speech encoder a model was trained with -> a SpeechEncoder (``.name``, ``.dim``,
    ``.encode_files(paths) -> [N, D_a]``). Cannot run here / width mismatch / no spec -> ModelError."""
    spec = bundle.speech_encoder
    if spec.dim != int(bundle.d_speech):
        raise ModelError(
            f"the bundle's speech encoder {spec.describe()} does not match its speech width {bundle.d_speech}"
        )
    return encoder_for_spec(spec)


def encoder_for_spec(spec: EncoderSpec):
    """EncoderSpec -> SpeechEncoder (see :func:`encoder_for_bundle`)."""
    if spec.name == SIMULATED:
        raise ModelError(
            f"this model was trained on simulated speech features ({spec.dim}-d): no encoder turns real "
            f"speech into them; pass .npy features of width {spec.dim} or a named emotion instead"
        )
    if spec.config.get("source") == "precomputed":
        from cmet.audio.emotion2vec import PrecomputedEncoder

        return PrecomputedEncoder.from_spec(spec)
    from cmet.audio.encoders import get_encoder

    try:
        enc = get_encoder(spec.config)
    except CmetError as e:
        raise ModelError(f"the model's speech encoder {spec.describe()} cannot be built here: {e}") from None
    if enc.name != spec.name or (enc.dim and enc.dim != spec.dim):
        raise ModelError(
            f"the model's speech encoder is {spec.describe()}; this installation builds {enc.name!r} "
            f"({enc.dim}-d) from its config: retrain the model, or pass .npy features of width {spec.dim}"
        )
    return enc
