"""BentoML serving of the C-MET model: service, build, commands, demo page, load test."""

__version__ = "0.1.0"
