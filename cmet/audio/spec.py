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

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cmet.errors import CmetError, DataError, ModelError

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
        return PrecomputedVectors(spec)
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


class PrecomputedVectors:
    """Utterance vectors computed elsewhere (the authors' emotion2vec+large): a ``.npy`` file is
    read as it is; an audio file's vector is ``<dir>/<feature_subdir>/<stem>.npy``."""

    def __init__(self, spec: EncoderSpec) -> None:
        self.spec = spec
        self.name = spec.name
        self.dim = spec.dim
        self.subdir = str(spec.config.get("feature_subdir", E2V_SUBDIR))

    def _vector(self, path: Path):
        import numpy as np

        f = path if path.suffix.lower() == ".npy" else path.parent / self.subdir / f"{path.stem}.npy"
        if not f.is_file():
            raise ModelError(
                f"{path.name}: no precomputed {self.spec.describe()} vector at {f}; this model needs "
                f"{self.name} features: pass .npy vectors [{self.dim}] (or wavs with {self.subdir}/ beside "
                "them), or a named emotion"
            )
        try:
            a = np.asarray(np.load(f, allow_pickle=False), np.float32).reshape(-1)
        except (OSError, ValueError, EOFError) as e:
            raise DataError(f"cannot read speech features {f} ({e})") from None
        if a.shape[0] != self.dim:
            raise DataError(
                f"speech features {f.name} have {a.shape[0]} values; {self.name} gives {self.dim}"
            )
        if not np.isfinite(a).all():
            raise DataError(f"speech features {f.name} contain NaN/inf")
        return a

    def encode_files(self, paths: Sequence[str | Path]):
        """Files -> [N, dim] float32 (see the class)."""
        import numpy as np

        rows = [self._vector(Path(p)) for p in paths]
        return np.stack(rows) if rows else np.zeros((0, self.dim), np.float32)
