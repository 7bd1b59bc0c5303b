"""Exceptions raised by the recognition core. Each message says what is wrong and what to do."""


class RecognizerError(Exception):
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
