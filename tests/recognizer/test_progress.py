"""Training progress and cancellation: reported after each epoch, checked between batches."""

from __future__ import annotations

import numpy as np
import pytest

from recognizer import errors
from recognizer.progress import TrainingHooks, keras_callback


def small_fit(hooks: TrainingHooks, epochs: int = 3):
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    x, y = np.random.default_rng(0).normal(size=(40, 4)), np.arange(40) % 2
    return model.fit(x, y, epochs=epochs, batch_size=8, verbose=0, callbacks=[keras_callback(hooks, phase="head", epochs=epochs)])


def test_each_epoch_reports_loss_accuracy_and_time_left():
    reports = []
    small_fit(TrainingHooks(report=reports.append))
    assert [r["epoch"] for r in reports] == [1, 2, 3]
    assert all(r["phase"] == "head" and r["epochs"] == 3 and r["loss"] > 0 and 0 <= r["accuracy"] <= 1 for r in reports)
    assert reports[-1]["seconds_left"] == 0 and reports[0]["seconds_left"] >= 0


def test_a_stop_asked_for_ends_training_after_the_current_batch():
    batches = []

    def should_stop() -> bool:
        batches.append(1)
        return len(batches) >= 2  # asked for during the second batch of the first epoch

    reports = []
    with pytest.raises(errors.TrainingCancelled):
        small_fit(TrainingHooks(report=reports.append, should_stop=should_stop), epochs=50)
    assert len(batches) == 2 and reports == []  # stopped within the first epoch, 3 of its 5 batches never ran
