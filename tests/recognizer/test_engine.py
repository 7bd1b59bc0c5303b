"""The inference engine: sorted top-k, batching, domain filtering, thread safety and the smoke test."""

from __future__ import annotations

import io
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from recognizer import errors
from recognizer.artifacts import save_artifact
from recognizer.engine import MAX_TOP_K, Engine, Prediction
from recognizer.manifest import ClassInfo
from tests.conftest import TINY_CLASSES, build_tiny_model, random_photo, tiny_manifest

# Two classes in each of three domains and none in "plant", so that renormalizing means something.
PAIRED_CLASSES = (
    ClassInfo(0, "cat", "cat", "animal"),
    ClassInfo(1, "dog", "dog", "animal"),
    ClassInfo(2, "owl", "owl", "bird"),
    ClassInfo(3, "crow", "crow", "bird"),
    ClassInfo(4, "teapot", "teapot", "other"),
    ClassInfo(5, "kettle", "kettle", "other"),
)


@pytest.fixture(scope="module")
def engine(tiny_artifact) -> Engine:
    return Engine.from_path(tiny_artifact)


@pytest.fixture(scope="module")
def paired(tmp_path_factory) -> Engine:
    path = tmp_path_factory.mktemp("paired") / "paired-v1.h5"
    save_artifact(build_tiny_model(num_classes=6, seed=3), tiny_manifest("paired", classes=PAIRED_CLASSES), path)
    return Engine.from_path(path)


@pytest.fixture(scope="module")
def pictures():
    return [random_photo(size=(40 + 7 * i, 30 + 5 * i), seed=i) for i in range(6)]


def raw_probabilities(engine: Engine, picture) -> np.ndarray:
    return engine.probabilities(engine.prepare(picture))[0]


def test_classify_returns_top_k_sorted_by_probability_with_index_label_domain(engine, pictures):
    (ranked,) = engine.classify(pictures[:1], top_k=3)
    raw = raw_probabilities(engine, pictures[0])
    assert len(ranked) == 3 and all(isinstance(p, Prediction) for p in ranked)
    assert [p.index for p in ranked] == list(np.argsort(-raw)[:3])
    assert [p.probability for p in ranked] == sorted((p.probability for p in ranked), reverse=True)
    for p in ranked:
        assert (p.label, p.domain) == (TINY_CLASSES[p.index].label, TINY_CLASSES[p.index].domain)
        assert p.probability == pytest.approx(raw[p.index])
        assert p.to_dict() == {
            "label": p.label, "index": p.index, "domain": p.domain, "probability": p.probability,
            "probability_in_domain": None,
        }


def test_probabilities_of_every_class_sum_to_one(engine, pictures):
    (ranked,) = engine.classify(pictures[:1], top_k=MAX_TOP_K)
    assert len(ranked) == len(TINY_CLASSES)  # top_k above the class count gives every class once
    assert {p.index for p in ranked} == set(range(len(TINY_CLASSES)))
    assert sum(p.probability for p in ranked) == pytest.approx(1.0, abs=1e-5)


def test_a_batch_gives_what_one_by_one_gives(engine, pictures):
    together = engine.classify(pictures, top_k=4)
    alone = [engine.classify([picture], top_k=4)[0] for picture in pictures]
    assert len(together) == len(pictures)
    for batched, single in zip(together, alone):
        assert [p.index for p in batched] == [p.index for p in single]
        np.testing.assert_allclose([p.probability for p in batched], [p.probability for p in single], atol=1e-5)


def test_different_pictures_get_different_answers(engine, pictures):
    rows = engine.probabilities(np.concatenate([engine.prepare(p) for p in pictures]))
    assert np.ptp(rows, axis=0).max() > 1e-3  # the batch test above would be empty otherwise


def test_bytes_paths_and_files_classify_like_the_decoded_picture(engine, tmp_path, photos, jpeg_bytes):
    from PIL import Image

    path = photos / "bird" / "turkey.jpg"
    expected = engine.classify([Image.open(path)], top_k=4)[0]
    for source in (jpeg_bytes, path, str(path), io.BytesIO(jpeg_bytes)):
        assert engine.classify([source], top_k=4)[0] == expected


def test_nothing_to_classify_gives_nothing(engine):
    assert engine.classify([]) == []


@pytest.mark.parametrize("top_k", [0, -1, MAX_TOP_K + 1])
def test_top_k_out_of_bounds_is_refused(engine, pictures, top_k):
    with pytest.raises(ValueError, match=f"top_k must be between 1 and {MAX_TOP_K}"):
        engine.classify(pictures[:1], top_k=top_k)


def test_top_k_1_gives_the_best_class_only(engine, pictures):
    (ranked,) = engine.classify(pictures[:1], top_k=1)
    assert [p.index for p in ranked] == [int(np.argmax(raw_probabilities(engine, pictures[0])))]


@pytest.mark.parametrize("domain", ["animal", "bird", "other"])
def test_a_domain_keeps_only_its_classes_with_the_raw_probability_and_the_share_within(paired, pictures, domain):
    raw = raw_probabilities(paired, pictures[1])
    (ranked,) = paired.classify(pictures[1:2], top_k=5, domain=domain)
    members = [c.index for c in PAIRED_CLASSES if c.domain == domain]
    assert sorted(p.index for p in ranked) == members
    assert {p.domain for p in ranked} == {domain}
    assert sum(p.probability_in_domain for p in ranked) == pytest.approx(1.0, abs=1e-9)
    for p in ranked:
        assert p.probability == pytest.approx(raw[p.index])
        assert p.probability_in_domain == pytest.approx(raw[p.index] / raw[members].sum())
        assert p.to_dict()["probability_in_domain"] == p.probability_in_domain
    assert ranked[0].probability >= ranked[1].probability


def test_a_domain_filter_with_top_k_1_gives_the_best_of_the_domain(paired, pictures):
    raw = raw_probabilities(paired, pictures[2])
    (ranked,) = paired.classify(pictures[2:3], top_k=1, domain="bird")
    assert [p.index for p in ranked] == [2 + int(np.argmax(raw[2:4]))]


def test_an_unknown_domain_is_a_value_error(engine, pictures):
    with pytest.raises(ValueError, match="Unknown domain 'fungus'; choose one of animal, bird, plant, other"):
        engine.classify(pictures[:1], domain="fungus")


def test_a_domain_the_model_has_no_classes_for_is_refused(paired, pictures):
    with pytest.raises(errors.RecognizerError, match="'paired' has no plant classes"):
        paired.classify(pictures[:1], domain="plant")


def test_eight_threads_at_once_get_the_sequential_answers(engine, pictures):
    jobs = [pictures[i % len(pictures) :] + pictures[: i % len(pictures)] for i in range(8)]
    jobs = [job[: 1 + i % 3] for i, job in enumerate(jobs)]  # batch sizes 1 to 3
    sequential = [engine.classify(job, top_k=4) for job in jobs]
    with ThreadPoolExecutor(max_workers=8) as pool:
        for _ in range(5):
            concurrent = list(pool.map(lambda job: engine.classify(job, top_k=4), jobs))
            for got, expected in zip(concurrent, sequential):
                for row_got, row_expected in zip(got, expected):
                    assert [p.index for p in row_got] == [p.index for p in row_expected]
                    np.testing.assert_allclose(
                        [p.probability for p in row_got], [p.probability for p in row_expected], atol=1e-6
                    )


def test_the_smoke_test_accepts_a_softmax_model(engine):
    engine.smoke_test()
    engine.warm_up()


@pytest.mark.parametrize("activation", [None, "sigmoid"], ids=["logits", "sigmoid"])
def test_the_smoke_test_refuses_outputs_that_are_not_probabilities(tmp_path, activation):
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((32, 32, 3), name="image")
    x = keras.layers.GlobalAveragePooling2D(name="pool")(inputs)
    outputs = keras.layers.Dense(len(TINY_CLASSES), activation=activation, name="scores")(x)
    save_artifact(keras.Model(inputs, outputs), tiny_manifest(), tmp_path / "scores.h5")
    engine = Engine.from_path(tmp_path / "scores.h5")
    with pytest.raises(errors.ArtifactError, match="not probabilities.*End the model with a softmax"):
        engine.smoke_test()


_KERAS_POOL = (
    "from recognizer.engine import _tensorflow\n"
    "print(_tensorflow().config.threading.get_intra_op_parallelism_threads())\n"
)


@pytest.mark.parametrize("threads", ["1", "2"])
def test_keras_engine_sizes_its_intra_op_pool_from_the_setting(threads):
    import os
    import subprocess
    import sys

    env = {**os.environ, "RECOGNIZER_INTRA_THREADS": threads, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([sys.executable, "-c", _KERAS_POOL], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[-1] == threads


def test_keras_engine_refuses_an_intra_op_count_below_one_as_the_compiled_engines_do():
    import os
    import subprocess
    import sys

    env = {**os.environ, "RECOGNIZER_INTRA_THREADS": "0", "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([sys.executable, "-c", _KERAS_POOL], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode != 0
    assert "RECOGNIZER_INTRA_THREADS must be a whole number of at least 1" in done.stderr
