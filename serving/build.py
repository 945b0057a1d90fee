"""Package a model as a self-contained bento: registry champion (or a bundle folder) -> BentoML model
store -> ``bentoml.bentos.build``.

:func:`build_bento` is the pipeline's last step (``build_bento("models:/cmet@champion", cfg)``) and what
``cmet bento build`` / ``make bento`` run. The BentoML model holds::

    bundle/        the ModelBundle folder found in the registered model's artifacts
    assets/        the face model files (cmet.face.assets: MediaPipe detector + mesh, FER judge)
    serving.json   registry name, version, alias, run id, metrics, where it came from

The demo sample clip is written into serving/static/ at build time (git-ignored). The build is offline
(``lock_packages: false``); the generated Dockerfile (env/docker/Dockerfile in the bento) names a CUDA
base image when ``serving.profile=gpu``.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
import tomllib
from pathlib import Path

from cmet.errors import ConfigError, ModelError
from flows.registry import find_bundle

ROOT = Path(__file__).resolve().parent.parent
SERVICE = "serving.service:CmetService"
INCLUDE = ["cmet/**/*.py", "serving/**/*.py", "serving/static/*", "configs/**/*.yaml", "pyproject.toml"]
EXCLUDE = ["**/__pycache__", "tests/", ".cmet/", ".venv/", "outputs/"]


def resolve_registry(model_uri: str, dst: Path) -> tuple[Path, dict]:
    """``models:/<name>@<alias>`` or ``models:/<name>/<version>`` -> (bundle folder, registry info)."""
    import mlflow

    from flows import registry as R

    if not model_uri.startswith("models:/"):
        raise ConfigError(
            f"model uri {model_uri!r}: expected models:/<name>@<alias> or models:/<name>/<version>"
        )
    ref = model_uri[len("models:/") :]
    if "@" in ref:
        (name, alias), version = ref.split("@", 1), None
    else:
        (name, version), alias = ref.rsplit("/", 1), None
    client = R.client()
    mv = R.resolve_version(client, name, alias or version)
    local = R.fetch_bundle(name, str(mv.version), Path(dst) / f"{name}-v{mv.version}", client)
    aliases = list(getattr(mv, "aliases", []) or [])
    if alias is None and aliases:  # built from models:/<name>/<version>: name the alias it holds
        alias = "champion" if "champion" in aliases else aliases[0]
    metrics: dict = {}
    if mv.run_id:
        try:
            metrics = dict(client.get_run(mv.run_id).data.metrics)
        except mlflow.exceptions.MlflowException:
            metrics = {}
    info = {
        "registered_name": name,
        "version": str(mv.version),
        "alias": alias,
        "aliases": aliases,
        "run_id": mv.run_id,
        "source": model_uri,
        "registry_metrics": metrics,
        "tracking_uri": mlflow.get_tracking_uri(),
    }
    return local, info


def import_model(bundle_dir: Path, info: dict, cfg, assets_dir: Path | None = None) -> str:
    """Copy the bundle + face assets into the BentoML model store -> the model tag (``cmet:<version>``)."""
    import bentoml

    from cmet.face import assets as face_assets

    bundle_dir = find_bundle(bundle_dir)
    assets_dir = Path(assets_dir) if assets_dir else face_assets.asset_dir()
    if not assets_dir.is_dir() or not any(assets_dir.iterdir()):
        face_assets.ensure(assets_dir)
    meta = json.loads((bundle_dir / "bundle.json").read_text())
    labels = {"registry_version": str(info.get("version", "none")), "alias": str(info.get("alias") or "none")}
    with bentoml.models.create(
        name=str(cfg.serving.model_name),
        module="cmet.model.bundle",
        labels=labels,
        metadata={k: v for k, v in info.items() if isinstance(v, str | int | float | bool)},
    ) as m:
        dst = Path(m.path)
        shutil.copytree(bundle_dir, dst / "bundle")
        shutil.copytree(assets_dir, dst / "assets", ignore=shutil.ignore_patterns("*.whl", "*.tmp"))
        info = {
            **info,
            "bento_model": str(m.tag),
            "bundle_metrics": meta.get("metrics", {}),
            "imported_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        (dst / "serving.json").write_text(json.dumps(info, indent=2, default=str))
        tag = str(m.tag)
    return tag


def _dependencies() -> list[str]:
    """The bento's requirements: pyproject's ``serving`` extra (what the service imports, no more)."""
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return list(data["project"]["optional-dependencies"]["serving"])


def build_options(cfg, model_tag: str) -> dict:
    """The bentofile options (also written as serving/bentofile.yaml by ``cmet bento build``)."""
    s = cfg.serving
    # no system ffmpeg / libGL: imageio-ffmpeg ships its ffmpeg, opencv-python-headless needs no GL
    docker: dict = {"distro": "debian", "python_version": "3.11"}
    if s.profile == "gpu":
        docker["cuda_version"] = str(s.cuda_version)
    return {
        "service": SERVICE,
        "name": str(s.name),
        "description": "C-MET: speech-driven emotion editing of talking-face video (edit / expressions / emotions / version, demo page at /ui)",
        "labels": {"model": model_tag, "profile": str(s.profile)},
        "include": INCLUDE,
        "exclude": EXCLUDE,
        "python": {"packages": _dependencies(), "lock_packages": False},
        "docker": docker,
        "envs": [
            {"name": "CMET_SERVING_PROFILE", "value": str(s.profile)},
            {"name": "BENTOML_DO_NOT_TRACK", "value": "true"},
        ],
        "models": [model_tag],
    }


def build_bento(source: str | Path, cfg) -> str:
    """The pipeline's last step: a model (``models:/...`` uri or a bundle folder) -> bento tag.

    Imports the model into the BentoML model store, writes the demo sample, builds the bento offline.
    """
    import bentoml
    from bentoml._internal.bento.build_config import BentoEnvSchema

    from cmet.env import configure_local_env
    from serving.sample import make_sample

    configure_local_env()
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="cmet-bento-") as tmp:
        if isinstance(source, str) and source.startswith("models:/"):
            bundle_dir, info = resolve_registry(source, Path(tmp))
        else:
            src = Path(source)
            if not src.exists():
                raise ModelError(f"bundle folder {src} does not exist")
            bundle_dir, info = find_bundle(src), {"source": str(src.resolve()), "version": "local"}
        model_tag = import_model(bundle_dir, info, cfg)
    s = cfg.serving
    release = Path(str(cfg.paths.release_dir)) if "paths" in cfg else None
    make_sample(
        ROOT / "serving" / "static" / "sample.mp4",
        release if release and release.is_dir() else None,
        seconds=float(s.sample.seconds),
        size=int(s.sample.size),
        fps=int(s.sample.fps),
    )
    opts = build_options(cfg, model_tag)
    env_before = {k: os.environ.get(k) for k in ("CMET_BENTO_MODEL", "CMET_SERVING_PROFILE")}
    os.environ["CMET_BENTO_MODEL"] = model_tag  # the service's BentoModel points at exactly this model
    os.environ["CMET_SERVING_PROFILE"] = str(s.profile)
    try:
        bento = bentoml.bentos.build(
            opts["service"],
            name=opts["name"],
            description=opts["description"],
            labels=opts["labels"],
            include=opts["include"],
            exclude=opts["exclude"],
            python=opts["python"],
            docker=opts["docker"],
            envs=[BentoEnvSchema(**e) for e in opts["envs"]],
            models=opts["models"],
            build_ctx=str(ROOT),
        )
    except BaseException:
        bentoml.models.delete(model_tag)  # no orphan model in the store when the build fails
        raise
    finally:
        for k, v in env_before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    dockerfile = Path(bento.path) / "env" / "docker" / "Dockerfile"
    if not dockerfile.is_file():
        raise ModelError(f"the bento {bento.tag} has no generated Dockerfile at {dockerfile}")
    print(
        f"built {bento.tag} from {info.get('source')} (model {model_tag}) in {time.perf_counter() - t0:.1f} s"
    )
    return str(bento.tag)
