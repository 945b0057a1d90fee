"""The pipeline's Prefect tasks, one module per stage: data, train, evaluate, publish."""
