"""Fine-tuning: the top backbone layers and the head trained end to end on augmented pixels, at a low rate."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np

from recognizer.backbones import Backbone
from recognizer.preprocessing import normalize, open_image, to_pixels
from recognizer.progress import EpochClock

if TYPE_CHECKING:  # training imports this module
    from recognizer.training import TrainConfig

Log = Callable[[str], None]

HEAD_LAYERS = ("head_dropout", "head_predictions")


def _augmenter(seed: int):
    import keras

    return keras.Sequential(
        [
            keras.layers.RandomFlip("horizontal", seed=seed),
            keras.layers.RandomRotation(0.05, fill_mode="nearest", seed=seed),
            keras.layers.RandomZoom(0.1, fill_mode="nearest", seed=seed),
            keras.layers.RandomContrast(0.1, seed=seed),
            keras.layers.RandomBrightness(0.1, value_range=(0, 255), seed=seed),
        ],
        name="augment",
    )


def unfreeze_top(model, k: int | None, *, freeze_batchnorm: bool = True) -> int:
    """Make the top k weighted backbone layers trainable (all when k is None).

    Pretrained BatchNorm layers stay in inference mode: a small dataset's batch
    statistics would wreck them. Training from scratch has no statistics to keep.
    """
    import keras

    candidates = [
        layer for layer in model.layers
        if layer.weights and layer.name not in HEAD_LAYERS
        and not (freeze_batchnorm and isinstance(layer, keras.layers.BatchNormalization))
    ]
    chosen = candidates if k is None else candidates[-k:]
    for layer in model.layers:
        layer.trainable = layer.name in HEAD_LAYERS or layer in chosen
    return len(chosen)


def fine_tune(model, paths: list[Path], labels: np.ndarray, backbone: Backbone, config: TrainConfig, log: Log) -> dict:
    """Train the top backbone layers and the head end to end on augmented pixels, at a low learning rate."""
    import keras

    spec = backbone.input_spec
    pixels = np.stack([to_pixels(open_image(p), spec) for p in paths]).astype(np.float32)
    count = unfreeze_top(model, None if config.from_scratch else config.fine_tune_layers, freeze_batchnorm=not config.from_scratch)
    rate = config.learning_rate if config.from_scratch else config.learning_rate / 100
    model.compile(optimizer=keras.optimizers.Adam(rate), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    augment, rng = _augmenter(config.seed), np.random.default_rng(config.seed)
    losses = []
    log(f"fine-tuning {count} backbone layers for {config.fine_tune_epochs} epochs at learning rate {rate:g}")
    clock = EpochClock(config.fine_tune_epochs)
    for epoch in range(config.fine_tune_epochs):
        order, epoch_losses = rng.permutation(len(labels)), []
        for start in range(0, len(order), config.batch_size):
            config.hooks.check()  # a cancel asked for stops the run here, between two batches
            batch = order[start : start + config.batch_size]
            augmented = np.clip(np.asarray(augment(pixels[batch], training=True)), 0, 255)
            loss = model.train_on_batch(normalize(augmented, spec.normalization), labels[batch])
            epoch_losses.append(float(np.ravel(loss)[0]))
        losses.append(float(np.mean(epoch_losses)))
        log(f"  fine-tune epoch {epoch + 1}: loss {losses[-1]:.4f}")
        config.hooks.emit(
            phase="fine-tune", epoch=epoch + 1, epochs=config.fine_tune_epochs, loss=round(losses[-1], 4),
            accuracy=None, val_accuracy=None, seconds_left=clock.tick(),
        )
    for layer in model.layers:
        layer.trainable = True  # saved models carry no frozen state
    return {"fine_tune_loss": losses}
