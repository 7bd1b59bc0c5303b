"""The benchmarks' servers register a copy of the artifact, never the user's own file."""

from __future__ import annotations

import pytest

from bench import http_bench
from recognizer.manifest import manifest_path, read_manifest, write_manifest
from webapp import services


@pytest.mark.django_db
def test_the_http_benchmark_registers_a_copy_so_the_users_manifest_keeps_the_engine_its_deployment_serves(
    artifact_copy, tmp_path, monkeypatch,
):
    # The user's deployment serves this file on ONNX Runtime; the benchmark registers it (here on Keras, as the
    # test settings compile nothing) in its own throwaway database. Registering writes the serving engine into the
    # manifest beside the file registered, which the user's running workers read as "recompiled for another engine".
    users = artifact_copy(folder=tmp_path / "users-models")
    write_manifest(read_manifest(manifest_path(users)).with_updates(engine="onnxruntime"), manifest_path(users))
    before = manifest_path(users).read_bytes()
    monkeypatch.setattr(http_bench, "SERVED_COPIES", tmp_path / "bench" / "served")

    copy = http_bench.served_copy(users)
    services.model_version_register(artifact_path=copy, activate=True)

    assert copy.parent == tmp_path / "bench" / "served" and copy.read_bytes() == users.read_bytes()
    assert read_manifest(manifest_path(copy)).engine == "keras"
    assert manifest_path(users).read_bytes() == before


def test_each_run_starts_from_the_users_manifest_not_the_one_the_last_run_registered(artifact_copy, tmp_path, monkeypatch):
    users = artifact_copy(folder=tmp_path / "users-models")
    monkeypatch.setattr(http_bench, "SERVED_COPIES", tmp_path / "served")
    first = http_bench.served_copy(users)
    write_manifest(read_manifest(manifest_path(first)).with_updates(engine="onnxruntime-int8"), manifest_path(first))

    second = http_bench.served_copy(users)
    assert second == first and second.read_bytes() == users.read_bytes()
    assert manifest_path(second).read_bytes() == manifest_path(users).read_bytes()
