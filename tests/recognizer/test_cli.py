"""`python -m recognizer`: classify files and folders from the shell, and build the default model."""

from __future__ import annotations

import json
import re
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from recognizer.cli import main
from recognizer.manifest import file_sha256, manifest_path
from recognizer.native_logs import NATIVE_LINE
from tests.conftest import TINY_CLASSES

REPO_ROOT = Path(__file__).resolve().parents[2]
TINY_LABELS = {c.label: c for c in TINY_CLASSES}


def run_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "recognizer", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
    )


def error_lines(stderr: str) -> list[str]:
    """The lines the CLI itself wrote."""
    return [line for line in stderr.splitlines() if line.startswith("error:") or ": error:" in line]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict:
    from tests.conftest import GOLDEN

    root = tmp_path_factory.mktemp("cli")
    folder = root / "folder"
    (folder / "nested").mkdir(parents=True)
    shutil.copy(GOLDEN / "bird" / "flamingo.jpg", folder / "flamingo.jpg")
    shutil.copy(GOLDEN / "plant" / "rose.jpg", folder / "nested" / "rose.jpg")
    (folder / "notes.txt").write_text("skipped: not an image suffix")
    broken = root / "broken.jpg"
    broken.write_text("this is not a photo\n")
    single = root / "zebra.jpg"
    shutil.copy(GOLDEN / "animal" / "zebra.jpg", single)
    return {"folder": folder, "broken": broken, "single": single}


@pytest.fixture(scope="module")
def json_run(tiny_artifact, inputs) -> subprocess.CompletedProcess:
    """One real run over a file, a folder and an unreadable file."""
    return run_cli(
        "classify", "--model", str(tiny_artifact), "--json", "--top-k", "3",
        str(inputs["single"]), str(inputs["broken"]), str(inputs["folder"]),
    )


def test_json_prints_one_object_per_image_in_order(json_run, inputs):
    rows = [json.loads(line) for line in json_run.stdout.splitlines()]
    folder = inputs["folder"]
    assert [row["file"] for row in rows] == [
        str(inputs["single"]), str(folder / "flamingo.jpg"), str(folder / "nested" / "rose.jpg")
    ]
    for row in rows:
        assert set(row) == {"file", "verdict", "predictions"}
        assert row["verdict"]["domain"] in ("animal", "bird", "plant", "other")
        predictions = row["predictions"]
        assert len(predictions) == 3
        assert [p["probability"] for p in predictions] == sorted((p["probability"] for p in predictions), reverse=True)
        for p in predictions:
            assert set(p) == {"label", "index", "domain", "probability", "probability_in_domain"}
            assert TINY_LABELS[p["label"]].index == p["index"] and TINY_LABELS[p["label"]].domain == p["domain"]
            assert 0.0 <= p["probability"] <= 1.0


def test_an_unreadable_file_among_good_ones_gives_one_error_line_the_rest_and_exit_1(json_run, inputs):
    assert json_run.returncode == 1
    assert error_lines(json_run.stderr) == [
        f"error: {inputs['broken']}: This file is not an image we can read (text). "
        "Send a JPEG, PNG, WebP, GIF or BMP photo."
    ]
    assert "Traceback" not in json_run.stderr
    assert len(json_run.stdout.splitlines()) == 3


def test_tensorflow_log_lines_stay_out_of_the_output_unless_verbose(json_run, tiny_artifact, inputs):
    assert json_run.stderr.splitlines() == error_lines(json_run.stderr)  # nothing but the CLI's own line
    verbose = run_cli("classify", "--verbose", "--model", str(tiny_artifact), str(inputs["single"]))
    assert verbose.returncode == 0, verbose.stderr
    assert any(NATIVE_LINE.match(line.encode()) for line in verbose.stderr.splitlines()), verbose.stderr


def test_top_k_0_is_a_one_line_usage_error():
    done = run_cli("classify", "--top-k", "0", "x.jpg")
    assert done.returncode == 2
    assert error_lines(done.stderr) == [
        "python -m recognizer classify: error: argument --top-k: must be between 1 and 20"
    ]
    assert "Traceback" not in done.stderr and done.stdout == ""


def test_a_missing_model_is_a_one_line_error_without_advice_about_the_default_model(tmp_path, inputs):
    missing = tmp_path / "nowhere.h5"
    done = run_cli("classify", "--model", str(missing), str(inputs["single"]))
    assert done.returncode == 2
    assert error_lines(done.stderr) == [f"error: no model at {missing}."]  # build-default would not make this one
    assert "Traceback" not in done.stderr and done.stdout == ""


# In-process variants: the same main(), without paying for a new interpreter each time.


def test_a_manifest_given_as_the_model_is_told_to_give_the_h5(tiny_artifact, capsys, inputs):
    # It was read as a model and "failed its checksum".
    assert main(["classify", "--model", str(tiny_artifact.with_suffix(".json")), str(inputs["single"])]) == 2
    assert capsys.readouterr().err.startswith(f"error: {tiny_artifact.with_suffix('.json').name} is not an .h5 file")


def test_without_model_it_names_the_default_model_path(tmp_path, monkeypatch, capsys, inputs):
    monkeypatch.setenv("RECOGNIZER_MODELS_DIR", str(tmp_path))
    assert main(["classify", str(inputs["single"])]) == 2
    assert capsys.readouterr().err == (
        f"error: no model at {tmp_path / 'imagenet-efficientnet_lite0-v1.h5'}; "
        "run `python -m recognizer build-default` first.\n"
    )


def test_a_model_without_manifest_is_a_one_line_error(tmp_path, capsys, tiny_artifact, inputs):
    shutil.copy(tiny_artifact, tmp_path / "lonely.h5")
    assert main(["classify", "--model", str(tmp_path / "lonely.h5"), str(inputs["single"])]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: No manifest at") and err.count("\n") == 1


def test_text_output_with_a_domain_shows_only_that_domain(capsys, tiny_artifact, inputs):
    assert main(["classify", "--model", str(tiny_artifact), "--domain", "bird", str(inputs["single"])]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{inputs['single']}: ") and out.count("\n") == 1
    verdict, top = out.split(": ", 1)[1].split(" Top: ")
    assert verdict.endswith(".")  # the verdict's sentence comes first
    assert re.fullmatch(r"owl \(bird\) \d+\.\d% \(100\.0% within birds\)\n", top)


def test_it_exits_1_when_every_file_fails(capsys, tiny_artifact, inputs, tmp_path):
    missing = tmp_path / "gone.jpg"
    assert main(["classify", "--model", str(tiny_artifact), str(inputs["broken"]), str(missing)]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == [
        f"error: {inputs['broken']}: This file is not an image we can read (text). "
        "Send a JPEG, PNG, WebP, GIF or BMP photo.",
        f"error: {missing}: cannot read: No such file or directory",
    ]



@pytest.mark.parametrize("where", ["missing folder", "a folder"])
def test_a_csv_path_that_cannot_be_written_is_a_one_line_usage_error(tmp_path, tiny_artifact, inputs, where):
    target = tmp_path / "no" / "such" / "out.csv" if where == "missing folder" else tmp_path
    done = run_cli("classify", "--model", str(tiny_artifact), "--csv", str(target), str(inputs["single"]))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("python -m recognizer classify: error: argument --csv:")
    assert ("there is no folder" if where == "missing folder" else "is a folder") in last

def test_csv_writes_one_row_per_photo_with_its_verdict_top_k_and_errors(tmp_path, tiny_artifact, inputs):
    import csv

    out = tmp_path / "survey.csv"
    done = run_cli(
        "classify", "--model", str(tiny_artifact), "--top-k", "2", "--csv", str(out),
        str(inputs["single"]), str(inputs["broken"]), str(inputs["folder"]),
    )
    assert done.returncode == 1  # one file could not be read
    assert done.stdout == ""
    with open(out, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["file"] for r in rows] == [
        str(inputs["single"]), str(inputs["broken"]), str(inputs["folder"] / "flamingo.jpg"),
        str(inputs["folder"] / "nested" / "rose.jpg"),
    ]
    assert rows[1]["error"] and not rows[1]["verdict_domain"]
    for row in (rows[0], rows[2], rows[3]):
        assert row["verdict_domain"] in ("animal", "bird", "plant", "other") and row["verdict_explanation"]
        assert row["top1_label"] in TINY_LABELS and row["top2_label"] in TINY_LABELS and "top3_label" not in row
        assert float(row["top1_probability"]) >= float(row["top2_probability"])
        assert not row["error"]


def test_a_folder_without_images_is_a_one_line_error(capsys, tiny_artifact, tmp_path):
    (tmp_path / "readme.txt").write_text("no pictures here")
    assert main(["classify", "--model", str(tiny_artifact), str(tmp_path)]) == 2
    assert capsys.readouterr().err == "error: no image files found in the given paths.\n"


def test_an_unknown_domain_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["classify", "--domain", "fungus", "x.jpg"])
    assert exit_info.value.code == 2
    assert "argument --domain: invalid choice: 'fungus'" in capsys.readouterr().err


def test_build_default_refuses_an_out_path_that_is_not_h5_before_building(capsys, tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        main(["build-default", "--out", str(tmp_path / "model.keras")])
    assert exit_info.value.code == 2
    assert "argument --out: must name a .h5 file" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_build_default_with_an_unknown_default_backbone_is_one_line_naming_the_setting(tmp_path):
    done = run_cli("build-default", "--out", str(tmp_path / "m.h5"), env={"RECOGNIZER_DEFAULT_BACKBONE": "vgg16"})
    assert done.returncode == 2 and list(tmp_path.iterdir()) == []
    assert done.stderr.strip().splitlines() == [
        "error: RECOGNIZER_DEFAULT_BACKBONE must be one of resnet50, efficientnet_lite0, efficientnet_lite1, "
        "efficientnet_lite2, not 'vgg16'."
    ]


@pytest.mark.slow
def test_build_default_twice_gives_the_same_bytes_and_a_working_model(tmp_path, photos):
    from recognizer.engine import Engine

    first, second = tmp_path / "a" / "model.h5", tmp_path / "b" / "model.h5"
    for out in (first, second):
        done = run_cli("build-default", "--out", str(out))
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == str(out)
    assert file_sha256(first) == file_sha256(second)
    assert manifest_path(first).read_bytes() == manifest_path(second).read_bytes()
    engine = Engine.from_path(first)
    assert engine.manifest.sha256 == file_sha256(first)
    (top,) = engine.classify([photos / "bird" / "gander.jpg"], top_k=1)[0]
    assert (top.label, top.domain) == ("goose", "bird") and top.probability > 0.5
