"""The model bundle: what training writes and everything downstream (edit, serving, pipeline) loads.

Folder layout (no pickle anywhere)::

    model.safetensors          C-MET connector weights
    bundle.json                model config (sizes), d_speech, d_expr, emotions, extended emotions,
                               speech encoder, training data hash, metrics, meta, baselines present
    banks.npz                  emotion banks: {emotion: [n_e, D_a]} speech embeddings of the TRAINING
                               split (neutral included; extended emotions' clips of training identities
                               too, so they can be asked for by name; the connector never trained on them)
    baselines/speech_direct.safetensors   the speech-direct baseline connector (optional)
    baselines/label.npz                    the label baseline's per-emotion offsets [D_v] (optional)

Usage::

    b = ModelBundle.load("runs/x/bundle")
    edited = b.edit_codes(neutral_codes, "happy", intensity=1.0)           # [L, D_v]
    edited = b.edit_codes(neutral_codes, {"happy": 0.5, "surprised": 0.5})  # a blend
    edited = b.edit_codes(neutral_codes, target_feats, neutral=neutral_feats) # [k, D_a] features
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cmet.errors import DataError, ModelError, UnknownEmotionError

NEUTRAL = "neutral"


@dataclass
class ModelBundle:
    connector: object  # cmet.model.connector.Connector (torch module)
    model_cfg: dict
    d_speech: int
    d_expr: int
    emotions: list[str]
    extended_emotions: list[str] = field(default_factory=list)
    banks: dict[str, np.ndarray] = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    meta: dict = field(default_factory=dict)
    baselines: dict = field(default_factory=dict)  # "speech_direct": Connector, "label": {emotion: [D_v]}

    # ------------------------------------------------------------ speech side
    @property
    def known_emotions(self) -> list[str]:
        return list(self.banks)

    @property
    def speech_encoder(self):
        """The :class:`cmet.audio.spec.EncoderSpec` the model's speech features came from (ModelError
        for a bundle that does not record it)."""
        from cmet.audio.spec import EncoderSpec

        return EncoderSpec.from_dict(self.meta.get("speech_encoder"))

    def bank(self, emotion: str) -> np.ndarray:
        """Speech embeddings of a named emotion: [n_e, D_a]."""
        if emotion not in self.banks:
            raise UnknownEmotionError(f"unknown emotion {emotion!r}; this model knows {sorted(self.banks)}")
        return self.banks[emotion]

    def _neutral(self, neutral: np.ndarray | None) -> np.ndarray:
        if neutral is not None:
            return np.asarray(neutral, dtype=np.float32)
        if NEUTRAL not in self.banks:
            raise ModelError("this bundle has no neutral bank; pass neutral speech features explicitly")
        return self.banks[NEUTRAL]

    def semantic_speech_vector(
        self, target, neutral: np.ndarray | None = None, intensity: float = 1.0
    ) -> np.ndarray:
        """Speech semantic vector a_{neutral->target}: [D_a].

        ``target``: speech features ``[k, D_a]`` (or ``[D_a]``), an emotion name from the banks, or a
        blend ``{emotion: weight}`` (weighted sum of the named emotions' vectors). ``neutral``: neutral
        speech features ``[m, D_a]`` (default: the neutral bank). Intensity as in :mod:`cmet.infer`.
        """
        from cmet.infer import _as_clips, blend, speech_difference

        neu = _as_clips(self._neutral(neutral), "neutral", self.d_speech)
        if isinstance(target, str):
            return speech_difference(self.bank(target), neu, intensity)
        if isinstance(target, dict):
            vecs = {e: speech_difference(self.bank(e), neu, 1.0) for e in target}
            return blend(vecs, target) * float(intensity)
        return speech_difference(_as_clips(target, "target", self.d_speech), neu, intensity)

    # ------------------------------------------------------------ visual side
    def predict_offsets(
        self, neutral_codes: np.ndarray, target, neutral: np.ndarray | None = None, intensity: float = 1.0
    ) -> np.ndarray:
        """Autoregressive offsets for a whole neutral code sequence: [L, D_v] -> [L, D_v].

        Intensity 0 returns exact zeros (no edit). ``target``/``neutral`` as in
        :meth:`semantic_speech_vector`.
        """
        from cmet.infer import check_codes

        codes = check_codes(neutral_codes, self.d_expr)
        return self.predict_segments(codes, [(0, len(codes))], [target], neutral, [intensity])[0]

    def predict_segments(
        self,
        neutral_codes: np.ndarray,
        spans,
        targets,
        neutral: np.ndarray | None = None,
        intensities=None,
    ) -> list[np.ndarray]:
        """Offsets of stretches of one neutral code sequence, each towards its own target, in one
        batch: codes [L, D_v], spans [(a, b), ...] -> [[b - a, D_v], ...]. Each stretch is its own
        autoregressive chain from frame ``a`` (a timeline segment: :func:`cmet.infer.timeline_offsets`).
        ``targets[i]`` / ``intensities[i]`` (default 1) as in :meth:`semantic_speech_vector`;
        intensity 0 gives exact zeros."""
        from cmet.infer import check_codes, predict_offsets_batch

        if self.connector is None:
            raise ModelError("this bundle was loaded without its weights (ModelBundle.load(weights=False))")
        codes = check_codes(neutral_codes, self.d_expr)
        intensities = [1.0] * len(spans) if intensities is None else list(intensities)
        for a, b in spans:
            if not 0 <= a < b <= len(codes):
                raise DataError(f"span ({a}, {b}) is not inside the {len(codes)} frames of the codes")
        out: list = [np.zeros((b - a, self.d_expr), np.float32) for a, b in spans]
        todo = [i for i, k in enumerate(intensities) if float(k) != 0.0]
        if todo:
            a = np.stack([self.semantic_speech_vector(targets[i], neutral, intensities[i]) for i in todo])
            seqs = [codes[spans[i][0] : spans[i][1]] for i in todo]
            for i, off in zip(todo, predict_offsets_batch(self.connector, seqs, a), strict=True):
                out[i] = off
        return out

    def edit_codes(
        self, neutral_codes: np.ndarray, target, neutral: np.ndarray | None = None, intensity: float = 1.0
    ) -> np.ndarray:
        """``neutral_codes + predict_offsets(...)``: [L, D_v] -> [L, D_v]."""
        codes = np.asarray(neutral_codes, dtype=np.float32)
        return codes + self.predict_offsets(codes, target, neutral, intensity)

    # ---------------------------------------------------------------- on disk
    def save(self, folder: str | Path) -> Path:
        from safetensors.torch import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        save_file(
            {k: v.detach().cpu().contiguous() for k, v in self.connector.state_dict().items()},
            str(folder / "model.safetensors"),
        )
        np.savez(folder / "banks.npz", **{e: np.asarray(v, np.float32) for e, v in self.banks.items()})
        present = []
        if "speech_direct" in self.baselines:
            (folder / "baselines").mkdir(exist_ok=True)
            sd = self.baselines["speech_direct"].state_dict()
            save_file(
                {k: v.detach().cpu().contiguous() for k, v in sd.items()},
                str(folder / "baselines" / "speech_direct.safetensors"),
            )
            present.append("speech_direct")
        if "label" in self.baselines:
            (folder / "baselines").mkdir(exist_ok=True)
            np.savez(
                folder / "baselines" / "label.npz",
                **{e: np.asarray(v, np.float32) for e, v in self.baselines["label"].items()},
            )
            present.append("label")
        info = dict(
            format="cmet-bundle/1",
            model_cfg=self.model_cfg,
            d_speech=int(self.d_speech),
            d_expr=int(self.d_expr),
            emotions=list(self.emotions),
            extended_emotions=list(self.extended_emotions),
            speech_encoder=self.meta.get("speech_encoder"),
            data_hash=self.meta.get("data_hash"),
            metrics=self.metrics,
            meta=self.meta,
            baselines=present,
        )
        (folder / "bundle.json").write_text(json.dumps(info, indent=2, default=_json_default))
        return folder

    @classmethod
    def load(cls, folder: str | Path, device=None, weights: bool = True) -> ModelBundle:
        """The bundle in ``folder``. ``weights=False``: everything but the networks (config, sizes,
        banks, speech encoder, metrics; ``connector`` None, no baselines), read without importing
        torch: what a caller needs to check a target before the weights are there."""
        folder = Path(folder)
        for name in ("bundle.json", "model.safetensors", "banks.npz"):
            if not (folder / name).is_file():
                raise ModelError(f"model bundle {folder} lacks {name}")
        try:
            info = json.loads((folder / "bundle.json").read_text())
        except json.JSONDecodeError as e:
            raise ModelError(f"model bundle {folder}: bundle.json is not valid JSON ({e})") from e
        with np.load(folder / "banks.npz", allow_pickle=False) as z:
            banks = {k: z[k] for k in z.files}
        if not weights:
            return cls._of(info, None, banks, {})

        import torch
        from safetensors.torch import load_file

        from cmet.model.connector import Connector

        device = torch.device(device) if device is not None else torch.device("cpu")

        def build(path: Path, speech_input: str):
            from omegaconf import OmegaConf

            m = Connector.from_cfg(
                OmegaConf.create(info["model_cfg"]), info["d_speech"], info["d_expr"], speech_input
            )
            try:
                state = load_file(str(path))
            except Exception as e:  # safetensors' own error types: a truncated or foreign file
                raise ModelError(f"weights file {path} cannot be read ({type(e).__name__}: {e})") from e
            try:
                m.load_state_dict(state)
            except RuntimeError as e:
                raise ModelError(
                    f"weights in {path} do not match the model config in bundle.json: {e}"
                ) from e
            return m.to(device).eval()

        conn = build(folder / "model.safetensors", "difference")
        baselines: dict = {}
        if "speech_direct" in info.get("baselines", []):
            baselines["speech_direct"] = build(folder / "baselines" / "speech_direct.safetensors", "direct")
        if "label" in info.get("baselines", []):
            with np.load(folder / "baselines" / "label.npz", allow_pickle=False) as z:
                baselines["label"] = {k: z[k] for k in z.files}
        return cls._of(info, conn, banks, baselines)

    @classmethod
    def load_async(cls, folder: str | Path, device=None, threads: int | None = None):
        """:meth:`load` in a helper thread -> its Future (``result()`` is the bundle or re-raises the
        load's error). ``threads``: torch's CPU threads, set first (a small connector runs faster on
        one thread than on two contended ones). Lets a caller track a video while torch imports."""
        from concurrent.futures import ThreadPoolExecutor

        def run() -> ModelBundle:
            if threads:
                import torch

                torch.set_num_threads(int(threads))
            return cls.load(folder, device)

        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cmet-load")
        try:
            return pool.submit(run)
        finally:
            pool.shutdown(wait=False)

    @classmethod
    def _of(cls, info: dict, conn, banks: dict, baselines: dict) -> ModelBundle:
        return cls(
            conn,
            info["model_cfg"],
            info["d_speech"],
            info["d_expr"],
            info["emotions"],
            info.get("extended_emotions", []),
            banks,
            info.get("metrics", {}),
            info.get("meta", {}),
            baselines,
        )


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


def check_bank_dims(banks: dict[str, np.ndarray], d_speech: int) -> None:
    for e, v in banks.items():
        if v.ndim != 2 or v.shape[1] != d_speech:
            raise DataError(f"bank {e!r} must be [n, D_a={d_speech}]; got {v.shape}")
