"""The domain head's file, its checks, and a fit that is deterministic and learns."""

import numpy as np
import pytest

from recognizer import errors
from recognizer.domain_head import DomainHead, domain_mass, fit, log_mass
from recognizer.labels import imagenet_classes
from recognizer.manifest import DOMAINS


def separable(n=200, dim=12, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, len(DOMAINS), n)
    centres = rng.normal(0, 3, (len(DOMAINS), dim))
    return centres[labels] + rng.normal(0, 1, (n, dim)), labels


def test_it_learns_separable_domains_and_the_same_data_gives_the_same_weights():
    x, y = separable()
    head = fit(x, y, seed=1)
    assert (head.logits(x).argmax(1) == y).mean() > 0.95
    assert np.array_equal(fit(x, y, seed=1).weights, head.weights)


def test_a_saved_head_reloads_identically_and_its_bytes_do_not_change(tmp_path):
    x, y = separable()
    head = DomainHead(fit(x, y).weights, fit(x, y).bias, temperature=1.3, backbone="b", mass_weight=0.5)
    first = head.save(tmp_path / "a.npz")
    assert head.save(tmp_path / "b.npz") == first
    again = DomainHead.load(tmp_path / "a.npz", sha256=first)
    assert (again.temperature, again.backbone, again.mass_weight) == (1.3, "b", 0.5)
    assert np.allclose(again.logits(x), head.logits(x), atol=1e-4)


def test_it_refuses_a_head_whose_sha256_is_not_the_manifests(tmp_path):
    x, y = separable()
    fit(x, y).save(tmp_path / "a.npz")
    with pytest.raises(errors.ChecksumMismatch):
        DomainHead.load(tmp_path / "a.npz", sha256="0" * 64)


def test_it_refuses_inputs_of_the_wrong_width():
    x, y = separable()
    with pytest.raises(errors.ShapeMismatch):
        fit(x, y).logits(x[:, :5])


def test_the_class_mass_per_domain_sums_the_classes_of_each_domain():
    p = np.zeros((1, 1000))
    p[0, [277, 278]] = 0.3  # foxes: animal
    p[0, 130] = 0.1  # flamingo: bird
    p[0, 849] = 0.3  # teapot: other
    assert np.allclose(domain_mass(p, imagenet_classes()), [[0.6, 0.1, 0.0, 0.3]])
    assert np.allclose(np.exp(log_mass(p, imagenet_classes())), [[0.6, 0.1, 1e-6, 0.3]])


def test_the_class_mass_moves_the_answer_by_its_weight():
    x, y = separable()
    head = fit(x, y)
    p = np.zeros((1, 1000))
    p[0, 849] = 1.0  # all mass on a teapot: "other"
    alone = DomainHead(head.weights, head.bias, mass_weight=0.0).probabilities(x[:1], p, imagenet_classes())
    joint = DomainHead(head.weights, head.bias, mass_weight=0.5).probabilities(x[:1], p, imagenet_classes())
    assert joint[0, DOMAINS.index("other")] > alone[0, DOMAINS.index("other")]


def test_fitted_with_the_other_experts_logits_it_learns_to_correct_that_expert():
    inputs, labels = separable()
    offset = np.zeros((len(labels), len(DOMAINS)))
    offset[labels == 1, 3] = 4.0  # the other expert is sure that every bird is "other"
    alone = fit(inputs, labels)
    joint = fit(inputs, labels, offset=offset)
    right = lambda head: float(((head.logits(inputs) + offset).argmax(1) == labels).mean())  # noqa: E731
    assert right(joint) == 1.0 and right(alone) < 0.9


def test_every_head_an_earlier_release_shipped_is_kept_under_its_sha256_and_loads():
    from recognizer.default_model import EARLIER_HEADS
    from recognizer.manifest import file_sha256

    kept = sorted(EARLIER_HEADS.glob("*.npz"))
    assert len(kept) >= 2  # the two heads the default model had before the one it ships now
    for path in kept:
        assert path.stem == file_sha256(path)
        assert DomainHead.load(path, sha256=path.stem).weights.shape == (1280, len(DOMAINS))


def test_a_manifest_naming_an_earlier_releases_head_finds_that_head_not_the_current_one(tiny_artifact):
    # A copy of the default model registered under an earlier release names the head shipped then: it keeps working.
    from recognizer.default_model import DATA, EARLIER_HEADS, head_path
    from recognizer.manifest import manifest_path, read_manifest
    from recognizer.verdict import Judge

    earlier = sorted(EARLIER_HEADS.glob("*.npz"))[0].stem
    named = {"file": "domain_head-efficientnet_lite0.npz", "sha256": earlier, "storage": "npz"}
    manifest = read_manifest(manifest_path(tiny_artifact)).with_updates(extra={"domain_head": named})
    assert head_path(manifest) == EARLIER_HEADS / f"{earlier}.npz"
    assert Judge.for_manifest(manifest).head is not None
    current = {**named, "sha256": "x"}
    assert head_path(manifest.with_updates(extra={"domain_head": current})) == DATA / "domain_head-efficientnet_lite0.npz"
