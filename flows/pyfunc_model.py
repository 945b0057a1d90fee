"""MLflow pyfunc wrapper of a C-MET model bundle (the bundle folder travels as the model's artifact).

Input: a DataFrame of neutral expression codes, one row a frame (``expr_0 .. expr_{D_v-1}``).
Params: ``emotion`` (a bank name), ``intensity``. Output: the edited codes ``[T, D_v]`` as a DataFrame.
Imported only by the pipeline's logging step (it imports MLflow at module level).
"""

from __future__ import annotations

import mlflow.pyfunc
import numpy as np
import pandas as pd


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
