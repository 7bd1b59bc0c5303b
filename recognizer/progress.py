"""Progress and cancellation of a training run: reported after each epoch, checked between batches.

The core knows nothing of who listens: a job queue passes `report` and `should_stop`, the CLI passes neither.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

from recognizer import errors


@dataclass
class TrainingHooks:
    report: Callable[[dict], None] | None = None
    should_stop: Callable[[], bool] | None = None

    def check(self) -> None:
        """Raise TrainingCancelled when a stop was asked for."""
        if self.should_stop is not None and self.should_stop():
            raise errors.TrainingCancelled("Training was cancelled.")

    def emit(self, **fields) -> None:
        """Pass one progress record to the listener, if any."""
        if self.report is not None:
            self.report(fields)


class EpochClock:
    """Seconds left in a phase, from the mean time of the epochs done so far."""

    def __init__(self, epochs: int):
        self.epochs, self.started, self.done = epochs, time.monotonic(), 0

    def tick(self) -> float:
        self.done += 1
        per_epoch = (time.monotonic() - self.started) / self.done
        return round(per_epoch * max(0, self.epochs - self.done), 1)


def keras_callback(hooks: TrainingHooks, *, phase: str, epochs: int):
    """A Keras callback that checks for cancellation after every batch and reports every epoch."""
    import keras

    class Progress(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.clock = EpochClock(epochs)

        def on_train_batch_end(self, batch, logs=None):
            hooks.check()

        def on_epoch_end(self, epoch, logs=None):
            logs = logs or {}
            hooks.emit(
                phase=phase, epoch=epoch + 1, epochs=epochs, loss=_number(logs.get("loss")),
                accuracy=_number(logs.get("accuracy")), val_accuracy=_number(logs.get("val_accuracy")),
                seconds_left=self.clock.tick(),
            )

    return Progress()


def _number(value) -> float | None:
    return None if value is None else round(float(value), 4)
