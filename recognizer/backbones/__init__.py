"""The backbones the recognizer can train on and serve, by name."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from recognizer.preprocessing import InputSpec


@dataclass(frozen=True)
class Backbone:
    name: str
    input_spec: InputSpec
    feature_dim: int
    build: Callable  # build(*, include_top: bool, weights: "imagenet" | None) -> keras.Model


def _resnet50() -> Backbone:
    from recognizer.backbones import resnet50

    return Backbone("resnet50", resnet50.INPUT_SPEC, resnet50.FEATURE_DIM, resnet50.build_resnet50)


def _lite(variant: str) -> Callable[[], Backbone]:
    def make() -> Backbone:
        from recognizer.backbones import efficientnet_lite

        def build(*, include_top: bool = True, weights: str | None = "imagenet"):
            return efficientnet_lite.build_efficientnet_lite(variant, include_top=include_top, weights=weights)

        return Backbone(variant, efficientnet_lite.input_spec(variant), 1280, build)

    return make


_REGISTRY = {
    "resnet50": _resnet50,
    "efficientnet_lite0": _lite("efficientnet_lite0"),
    "efficientnet_lite1": _lite("efficientnet_lite1"),
    "efficientnet_lite2": _lite("efficientnet_lite2"),
}
NAMES = tuple(_REGISTRY)
DEFAULT = "efficientnet_lite0"  # the default model's, unless RECOGNIZER_DEFAULT_BACKBONE names another


def get_backbone(name: str) -> Backbone:
    """The backbone called `name`; a ValueError that lists the choices otherwise."""
    try:
        return _REGISTRY[name]()
    except KeyError:
        raise ValueError(f"Unknown backbone {name!r}; choose one of {', '.join(NAMES)}.") from None
