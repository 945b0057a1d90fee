"""MLflow pyfunc wrapper of a C-MET model bundle (the bundle folder travels as the model's artifact).

Input: a DataFrame of neutral expression codes, one row a frame (``expr_0 .. expr_{D_v-1}``).
Params: ``emotion`` (a bank name), ``intensity``. Output: the edited codes ``[T, D_v]`` as a DataFrame.

:func:`log_pyfunc` logs it as a model from code (this file; no pickled class) with the ``cmet`` package
as its code path and pinned third-party requirements, so the model loads where the project is not
installed. Imported only by the pipeline's logging step (it imports MLflow at module level).
"""

from __future__ import annotations

from pathlib import Path

import mlflow.pyfunc
import numpy as np
import pandas as pd
from mlflow.models import set_model

ROOT = Path(__file__).resolve().parent.parent
#: the distributions the model imports when it is loaded (pinned to the versions that logged it)
RUNTIME = ("torch", "numpy", "pandas", "safetensors", "omegaconf", "mlflow", "cloudpickle")


class CmetPyfunc(mlflow.pyfunc.PythonModel):
    def load_context(self, context) -> None:
        from cmet.model.bundle import ModelBundle

        self.bundle = ModelBundle.load(context.artifacts["bundle"])

    def predict(self, context, model_input: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:
        p = {"emotion": "happy", "intensity": 1.0, **(params or {})}
        codes = np.asarray(model_input, dtype=np.float32)
        edited = self.bundle.edit_codes(codes, str(p["emotion"]), intensity=float(p["intensity"]))
        return pd.DataFrame(edited, columns=[f"expr_{i}" for i in range(edited.shape[1])])


def signature(d_expr: int):
    """Model signature: frames of neutral codes in, edited codes out; emotion/intensity as params."""
    from mlflow.models import infer_signature

    x = pd.DataFrame(np.zeros((5, d_expr), np.float32), columns=[f"expr_{i}" for i in range(d_expr)])
    return infer_signature(x, x, params={"emotion": "happy", "intensity": 1.0})


def requirements() -> list[str]:
    """``name==version`` of :data:`RUNTIME` as installed here (a local build tag such as ``+cpu`` dropped)."""
    from importlib.metadata import version

    return [f"{name}=={version(name).split('+')[0]}" for name in RUNTIME]


def log_pyfunc(bundle_dir: str | Path, d_expr: int, input_example: pd.DataFrame | None = None):
    """Log the bundle as ``model`` of the active run -> MLflow ModelInfo (``model_uri``, ``model_id``)."""
    return mlflow.pyfunc.log_model(
        name="model",
        python_model=__file__,
        artifacts={"bundle": str(bundle_dir)},
        code_paths=[str(ROOT / "cmet")],
        signature=signature(int(d_expr)),
        input_example=input_example,
        pip_requirements=requirements(),
    )


set_model(CmetPyfunc())  # the model this file defines when MLflow loads it as code
