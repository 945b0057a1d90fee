"""Orchestration: Prefect flows that compose the ``cmet`` library, and the full ``cmet`` command."""
