"""The orchestration commands of ``cmet`` (module-level Typer apps, listed in flows/cli.py)."""
