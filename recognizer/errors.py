"""Exceptions raised by the recognition core. Each message says what is wrong and what to do.

Messages meant for people are English templates marked with `gettext_noop`
and filled from keyword parameters, so that the web edge can show them in the
reader's language (`gettext(exc.template) % exc.params`) while this package
never imports Django. xgettext, and so Django's makemessages, extracts every
string passed to a function of that name.
"""


class Marked(str):
    """A string marked for translation; a parameter of this type is translated too, other parameters never."""


def gettext_noop(message: str) -> str:
    """Mark `message` for the translation catalogs; translation happens where the reader is known."""
    return Marked(message)


class Translatable:
    """An exception whose message is a marked template filled with named parameters."""

    def __init__(self, message: str = "", **params):
        self.template, self.params = message, params
        super().__init__(message % params if params else message)


class RecognizerError(Translatable, Exception):
    """Base class of every error the core raises on purpose."""

    code = "recognizer_error"


class ImageError(RecognizerError):
    """The input could not be turned into a model batch."""

    code = "invalid_image"


class EmptyImage(ImageError):
    code = "empty_image"


class UnreadableImage(ImageError):
    code = "unreadable_image"


class UnsupportedImageFormat(ImageError):
    code = "unsupported_format"


class ImageTooLarge(ImageError):
    """Too many pixels (the file's size is FileTooLarge)."""

    code = "image_too_large"


class FileTooLarge(ImageError):
    """Too many bytes in one file (the pixel count is ImageTooLarge)."""

    code = "file_too_large"


class ImageTooSmall(ImageError):
    code = "image_too_small"


class InvalidQuery(RecognizerError):
    """A query this model cannot answer: a domain it has no class of."""

    code = "invalid_parameter"


class ArtifactError(RecognizerError):
    """A model artifact (H5 + manifest) failed a check; it must not be served."""

    code = "invalid_artifact"


class ManifestError(ArtifactError):
    code = "invalid_manifest"


class ChecksumMismatch(ArtifactError):
    code = "checksum_mismatch"


class UnsafeModel(ArtifactError):
    code = "unsafe_model"


class ShapeMismatch(ArtifactError):
    code = "shape_mismatch"


class WeightsUnavailable(RecognizerError):
    """Pretrained weights are needed but cannot be found offline or downloaded."""

    code = "weights_unavailable"


class DatasetError(RecognizerError):
    """A training or evaluation folder cannot be used as it is."""

    code = "invalid_dataset"
    skipped: list = []  # (file, reason) of the files whose failure caused it, when there are such files


class TrainingCancelled(RecognizerError):
    """Someone asked a training run to stop; it stopped between two batches."""

    code = "training_cancelled"
