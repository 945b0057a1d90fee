"""Prefect task defaults and content-addressed cache keys of the pipeline's stages.

A cache key is a hash of what produced a result: the data's inputs (:func:`cmet.data.input_hash`: its
config, source files and code), the config sections a stage reads and the library code it runs
(:mod:`cmet.hashing`); never a float the pipeline computed (another CPU computes some in the last bits
differently, and would miss every cache). Tasks that write a folder write it under
``<out_root>/<key>`` and mark it complete with a ``DONE`` file; :func:`fresh` recomputes a cached task
whose folder vanished (``make clean``), so a cached result never points at deleted files.
"""

from __future__ import annotations

import json
from pathlib import Path

from cmet import hashing
from cmet.errors import CmetError

MODEL_CODE = (
    "cmet/model",
    "cmet/train.py",
    "cmet/train_loop.py",
    "cmet/checkpoint.py",
    "cmet/device.py",
    "cmet/infer.py",
    "cmet/data",
    "cmet/audio/spec.py",
)
EVAL_CODE = (
    "cmet/evaluate.py",
    "cmet/model",
    "cmet/infer.py",
    "cmet/data/__init__.py",
    "cmet/data/features.py",
    "cmet/data/sampling.py",
)


def transient(task, task_run, state) -> bool:
    """Prefect retry condition: retry unexpected errors, never bad input (CmetError)."""
    try:
        exc = state.result(raise_on_failure=False)
    except Exception:  # pragma: no cover
        return True
    return not isinstance(exc, CmetError)


def stage_task(**kw):
    """``prefect.task`` with the pipeline's defaults: persisted results, no retry on bad input."""
    from prefect import task

    return task(**{"persist_result": True, "retry_condition_fn": transient, **kw})


def key_fn(*key_params: str):
    """cache_key_fn factory: key = hash of the named parameters (content hashes) + the task name."""

    def fn(context, parameters: dict) -> str | None:
        return hashing.hash_obj([parameters.get(k) for k in key_params] + [context.task.name])

    return fn


def fresh(task_obj, out_root: str | Path, key: str):
    """The task, with ``refresh_cache=True`` when its output folder ``out_root/key`` is incomplete."""
    done = (Path(out_root) / key / "DONE").is_file()
    return task_obj if done else task_obj.with_options(refresh_cache=True)


def mark_done(folder: Path, info: dict | None = None) -> None:
    (folder / "DONE").write_text(json.dumps(info or {}, default=str))


def cfg_of(cfg_dict: dict):
    """The config a task received as a plain dict (hashable by Prefect) -> OmegaConf."""
    from omegaconf import OmegaConf

    return OmegaConf.create(cfg_dict)


# ------------------------------------------------------------------------------------ the stage keys
def data_key(cfg) -> str:
    """The data's key (the dataset stage's folder, and the ``data_hash`` of every later stage's key):
    the source's inputs (:func:`cmet.data.input_hash`), or the bytes of ``pipeline.features_dir``."""
    from cmet.data import input_hash

    src = cfg.pipeline.features_dir
    return hashing.hash_obj([input_hash(cfg), hashing.hash_dir(src) if src else None])


def features_key(data_key_: str, n_shards: int) -> str:
    return hashing.hash_obj([data_key_, hashing.hash_code("cmet/audio"), n_shards])


def study_name(cfg, data_hash: str) -> str:
    """The Optuna study of this data + model/train/pipeline config + code (same inputs, same study)."""
    if cfg.pipeline.tune.study_name:
        return str(cfg.pipeline.tune.study_name)
    model_key = hashing.hash_cfg(cfg, "model", "train", "seed")
    h = hashing.hash_obj([model_key, hashing.hash_cfg(cfg, "pipeline"), hashing.hash_code(*MODEL_CODE)], 10)
    return f"cmet-{data_hash}-{h}"


def train_key(cfg, data_hash: str) -> str:
    return hashing.hash_obj(
        [data_hash, hashing.hash_cfg(cfg, "model", "train", "seed", "device"), hashing.hash_code(*MODEL_CODE)]
    )


def eval_hash(cfg, data_hash: str) -> str:
    """The evaluation set + protocol (champion metrics are comparable when this hash is equal)."""
    return hashing.hash_obj([data_hash, hashing.hash_cfg(cfg, "eval"), hashing.hash_code(*EVAL_CODE)])
