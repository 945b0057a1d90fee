"""Errors that carry a message meant for a person.

Every failure caused by bad input raises a subclass of :class:`CmetError` whose message names the
problem (which file, which column, which emotion) and, where there is one, the fix. The CLI and
the service turn these into a one-line message / a 4xx answer instead of a traceback.
"""


class CmetError(Exception):
    """Base class: an error whose message is shown to the user as it is."""


class ConfigError(CmetError):
    """A configuration value is missing or out of range."""


class DataError(CmetError):
    """Input data breaks the data contract (shape, NaN, missing file, schema)."""


class UnknownEmotionError(DataError):
    """An emotion name that the model / bank / dataset does not know."""


class TooFewClipsError(DataError):
    """Fewer clips than the configured minimum for a semantic-vector mean."""


class AudioError(DataError):
    """Unreadable, silent, too short or otherwise unusable audio."""


class VideoError(DataError):
    """Unreadable or too-short video."""


class FaceNotFoundError(DataError):
    """No face was found where one is needed."""


class ModelError(CmetError):
    """A checkpoint or model folder is missing or does not match the config."""
