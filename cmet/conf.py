"""Typed config schemas: one dataclass per config group, registered with Hydra's ConfigStore.

Each YAML of a typed group starts with ``defaults: [base_<group>, _self_]``, so Hydra merges the YAML
onto the dataclass: a value of the wrong type (in the YAML or in an override such as
``face.render_gain=abc``) and an override of a key the schema does not have are refused at composition
with one :class:`~cmet.errors.ConfigError` (see :func:`cmet.config.compose`). Library code therefore
reads ``cfg.face.video_jaw_gain`` directly, never ``cfg.get("key", default)``.

The dataclass defaults equal the default YAML's values and both have the same keys
(``tests/code/test_config_types.py`` holds them equal; Hydra itself lets a YAML add a key the schema
lacks): a new key goes into both, its comment into the YAML. Groups whose options have different keys
(``data``, ``audio``) and the orchestration group ``pipeline`` stay untyped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional  # noqa: UP035 - OmegaConf resolves Optional[...] annotations

from omegaconf import MISSING

# ruff: noqa: UP045


@dataclass
class PathsConfig:
    """Every store a run writes, inside the project folder (``configs/paths``)."""

    root: str = "${oc.env:CMET_ROOT,.}"
    work_dir: str = "${paths.root}/.cmet"
    cache_dir: str = "${paths.work_dir}/cache"
    data_dir: str = "${paths.work_dir}/data"
    models_dir: str = "${paths.work_dir}/models"
    runs_dir: str = "${paths.work_dir}/runs"
    shared_dir: str = "${oc.env:CMET_SHARED,${paths.root}/../shared}"
    release_dir: str = "${paths.shared_dir}/data/cmet_release"


@dataclass
class ModelConfig:
    """The connector's sizes (``configs/model``; defaults: ``cmet_small``)."""

    name: str = "cmet"
    d_model: int = 64
    n_layers: int = 2
    n_heads: int = 4
    ff_dim: int = 128
    dropout: float = 0.1
    window: int = 5
    conv_channels: int = 16
    conv_layers: int = 2


@dataclass
class LossConfig:
    recon: str = "mse"
    focal_gamma: float = 0.2
    w_contrastive: float = 0.1
    w_direction: float = 0.05
    dir_squared: bool = True
    temperature: float = 0.1


@dataclass
class TrainConfig:
    """AdamW training (``configs/train``; defaults: ``default``)."""

    lr: float = 1.0e-3
    weight_decay: float = 1.0e-5
    batch_size: int = 64
    steps: int = 600
    warmup_steps: int = 50
    min_lr_ratio: float = 0.1
    k_clips: int = 10
    min_clips: int = 3
    grad_clip: float = 1.0
    mixed_precision: bool = False
    num_threads: int = 1
    log_every: int = 50
    eval_every: int = 200
    val_draws: int = 2
    val_batches: int = 2
    checkpoint_every: int = 200
    resume: bool = True
    ref_drop: float = 0.5
    quiet: bool = False
    final_eval: bool = True
    loss: LossConfig = field(default_factory=LossConfig)


@dataclass
class ClassifierConfig:
    kind: str = "lda"
    window: int = 5


@dataclass
class EvalConfig:
    """Evaluation of edited codes (``configs/eval``)."""

    k_clips: int = 10
    n_draws: int = 8
    intensity: float = 1.0
    classifier: ClassifierConfig = field(default_factory=ClassifierConfig)
    baselines: list[str] = field(default_factory=lambda: ["label", "speech_direct", "reference"])


@dataclass
class FaceConfig:
    """Face side: renderer, landmarks, judge, and the video-edit gains (``configs/face``)."""

    render_gain: float = 1.6
    shading: float = 1.0
    smoothing: str = "one_euro"
    judge_backend: str = "tflite"
    neutral_frames: int = 25
    video_jaw_gain: float = 0.4
    video_lip_gain: float = 0.7
    lip_hold_s: float = 4.0


@dataclass
class GateCheck:
    """One absolute gate: ``metric`` must be >= ``min`` and/or <= ``max``."""

    metric: str = MISSING
    min: Optional[float] = None
    max: Optional[float] = None
    required: bool = True


def _absolute_gates() -> dict[str, GateCheck]:
    return {
        "acc_emo": GateCheck("acc_emo/cmet", min=0.40),
        "acc_emo_extended": GateCheck("acc_emo_ext/cmet", min=0.20),
        "lips_kept": GateCheck("lips_kept", min=0.7, required=False),
        "identity_kept": GateCheck("identity_median", max=0.6, required=False),
        "latency": GateCheck("latency_ms_per_frame", max=50.0),
    }


@dataclass
class RelativeGates:
    """Candidate vs champion (same evaluation set) and vs the speech-direct baseline."""

    metric: Optional[str] = "acc_emo/cmet"
    champion_margin: float = 0.02
    baseline: Optional[str] = "acc_emo/speech_direct"
    baseline_margin: float = 0.0


@dataclass
class GatesConfig:
    """Promotion gates (``configs/gates``, read by ``flows/gates.py``)."""

    absolute: dict[str, GateCheck] = field(default_factory=_absolute_gates)
    relative: RelativeGates = field(default_factory=RelativeGates)
    missing_metric: str = "fail"


@dataclass
class TrafficConfig:
    timeout: int = 300
    max_concurrency: int = 32


@dataclass
class LimitsConfig:
    max_upload_mb: float = 50
    max_request_mb: float = 120
    max_video_s: float = 20.0
    max_task_video_s: float = 120.0
    max_frame_side: int = 3840
    max_pixel_seconds: float = 20971520.0
    max_task_pixel_seconds: float = 248832000.0
    min_frames: int = 5
    max_speech_clips: int = 32
    max_speech_s: float = 60.0
    intensity: list[float] = field(default_factory=lambda: [0.0, 3.0])
    max_blend_terms: int = 8
    max_timeline_entries: int = 256
    max_feature_values: int = 262144
    max_feature_abs: float = 1000.0


@dataclass
class AuthConfig:
    enabled: bool = False
    key_env: str = "CMET_API_KEY"
    key_file: Optional[str] = None
    remote_without_key: bool = False


@dataclass
class RateLimitConfig:
    requests_per_minute: float = 300
    burst: int = 60


@dataclass
class CorsConfig:
    origins: list[str] = field(default_factory=list)


@dataclass
class JobsConfig:
    retention_s: float = 3600
    max_pending: int = 8


@dataclass
class ProvenanceConfig:
    visible_mark: Optional[str] = None


@dataclass
class SampleConfig:
    seconds: float = 2.0
    size: int = 256
    fps: int = 25


@dataclass
class ServingConfig:
    """The BentoML service (``configs/serving``)."""

    name: str = "cmet_service"
    model_name: str = "cmet"
    registry_uri: str = "models:/cmet@champion"
    host: str = "127.0.0.1"
    port: int = 3000
    profile: str = "cpu"
    cuda_version: str = "12.8"
    workers: int = 1
    parallel_edits: int = 1
    traffic: TrafficConfig = field(default_factory=TrafficConfig)
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    work_dir: str = ".cmet/serving/work"
    auth: AuthConfig = field(default_factory=AuthConfig)
    rate_limit: RateLimitConfig = field(default_factory=RateLimitConfig)
    cors: CorsConfig = field(default_factory=CorsConfig)
    jobs: JobsConfig = field(default_factory=JobsConfig)
    provenance: ProvenanceConfig = field(default_factory=ProvenanceConfig)
    sample: SampleConfig = field(default_factory=SampleConfig)


#: config group -> its schema; stored as ``<group>/base_<group>``
SCHEMAS: dict[str, type] = {
    "paths": PathsConfig,
    "model": ModelConfig,
    "train": TrainConfig,
    "eval": EvalConfig,
    "face": FaceConfig,
    "gates": GatesConfig,
    "serving": ServingConfig,
}


def register_configs() -> None:
    """Store every schema in Hydra's ConfigStore (idempotent; :func:`cmet.config.compose` calls it)."""
    from hydra.core.config_store import ConfigStore

    cs = ConfigStore.instance()
    for group, schema in SCHEMAS.items():
        cs.store(group=group, name=f"base_{group}", node=schema)


def typed(cfg: Any, schema: type) -> Any:
    """``cfg`` (a dict or DictConfig, possibly partial) merged onto ``schema``'s defaults, validated."""
    from omegaconf import OmegaConf

    return OmegaConf.merge(OmegaConf.structured(schema), cfg)
