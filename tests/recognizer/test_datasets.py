"""Image-folder datasets: what scan_dataset accepts, what it skips, and each data problem's message."""

from __future__ import annotations

import pytest

from recognizer import errors
from recognizer.datasets import check_trainable, scan_dataset
from recognizer.manifest import ClassInfo
from tests.synthetic import truncated_png, write_dataset

THREE = {"red-stripes": 3, "green-blocks": 3, "blue-circle": 3}


def write_csv(root, *rows: str, header: str = "folder,label,domain") -> None:
    (root / "classes.csv").write_text("\n".join((header, *rows)) + "\n", encoding="utf-8")


def test_classes_follow_the_sorted_folder_order_whatever_the_creation_order(tmp_path):
    # write_dataset creates the folders out of order.
    dataset = scan_dataset(write_dataset(tmp_path, THREE), domain="animal")
    assert [c.id for c in dataset.classes] == ["blue-circle", "green-blocks", "red-stripes"]
    assert [c.index for c in dataset.classes] == [0, 1, 2]
    assert {c.domain for c in dataset.classes} == {"animal"}
    assert [c.label for c in dataset.classes] == [c.id for c in dataset.classes]
    assert dataset.counts() == [3, 3, 3]
    assert all(path.parent.name == dataset.classes[index].id for path, index in dataset.items)


def test_classes_csv_gives_labels_and_domains_and_domain_fills_the_rest(tmp_path):
    root = write_dataset(tmp_path, THREE)
    write_csv(root, "red-stripes,Red stripes,bird", "blue-circle,Blue circle,plant")
    classes = scan_dataset(root, domain="animal").classes
    assert classes == (
        ClassInfo(0, "blue-circle", "Blue circle", "plant"),
        ClassInfo(1, "green-blocks", "green-blocks", "animal"),
        ClassInfo(2, "red-stripes", "Red stripes", "bird"),
    )


def test_classes_csv_alone_is_enough_without_a_domain(tmp_path):
    root = write_dataset(tmp_path, {"red-stripes": 2, "blue-circle": 2})
    write_csv(root, "red-stripes,Red,bird", "blue-circle,Blue,plant")
    assert [(c.label, c.domain) for c in scan_dataset(root).classes] == [("Blue", "plant"), ("Red", "bird")]


def test_a_classes_csv_saved_by_a_spreadsheet_with_a_byte_order_mark_is_read(tmp_path):
    # "CSV UTF-8" starts with a BOM, which became part of the first column's name: "needs the columns folder,...".
    root = write_dataset(tmp_path, {"red-stripes": 2, "blue-circle": 2})
    (root / "classes.csv").write_bytes("folder,label,domain\nred-stripes,Red,bird\nblue-circle,Blue,plant\n".encode("utf-8-sig"))
    assert [(c.label, c.domain) for c in scan_dataset(root).classes] == [("Blue", "plant"), ("Red", "bird")]


def test_a_classes_csv_in_another_encoding_is_refused_in_one_line(tmp_path):
    root = write_dataset(tmp_path, {"red-stripes": 2, "blue-circle": 2})
    (root / "classes.csv").write_bytes("folder,label,domain\nred-stripes,Red,bird\n".encode("utf-16"))
    with pytest.raises(errors.DatasetError, match="classes.csv is not UTF-8 text; save it as CSV UTF-8."):
        scan_dataset(root)


def test_a_class_without_domain_or_classes_csv_row_is_an_error_naming_it(tmp_path):
    root = write_dataset(tmp_path, THREE)
    with pytest.raises(errors.DatasetError, match="No domain for class 'blue-circle'.*--domain"):
        scan_dataset(root)
    write_csv(root, "blue-circle,Blue,plant", "green-blocks,Green,plant")
    with pytest.raises(errors.DatasetError, match="No domain for class 'red-stripes'"):
        scan_dataset(root)


def test_folders_named_after_a_domain_need_no_domain(tmp_path):
    root = write_dataset(tmp_path, {"bird": 2, "plant": 1})
    write_dataset(root / "plant" / "ferns", {"more": 2}, seed=1)
    dataset = scan_dataset(root)
    assert [(c.id, c.domain) for c in dataset.classes] == [("bird", "bird"), ("plant", "plant")]
    assert dataset.counts() == [2, 3]  # images in nested folders belong to their class folder


def test_a_classes_csv_with_an_unknown_domain_or_missing_columns_is_refused(tmp_path):
    root = write_dataset(tmp_path, THREE)
    write_csv(root, "red-stripes,Red,fish")
    with pytest.raises(errors.DatasetError, match="'red-stripes' has domain 'fish'"):
        scan_dataset(root, domain="animal")
    write_csv(root, "red-stripes,Red", header="folder,label")
    with pytest.raises(errors.DatasetError, match="needs the columns folder,label,domain"):
        scan_dataset(root, domain="animal")


def test_an_unknown_domain_option_is_refused(tmp_path):
    with pytest.raises(errors.DatasetError, match="Unknown domain 'fish'"):
        scan_dataset(write_dataset(tmp_path, THREE), domain="fish")


def test_unreadable_and_non_image_files_are_skipped_with_their_reason(tmp_path):
    root = write_dataset(tmp_path, THREE)
    (root / "red-stripes" / "notes.txt").write_text("not a picture")
    (root / "green-blocks" / "empty.jpg").write_bytes(b"")
    (root / "blue-circle" / "doc.png").write_bytes(b"%PDF-1.4 pretending")
    (root / "blue-circle" / ".DS_Store").write_bytes(b"\x00\x01")
    dataset = scan_dataset(root, domain="plant")
    skipped = {path.name: reason for path, reason in dataset.skipped}
    assert set(skipped) == {"notes.txt", "empty.jpg", "doc.png"}  # hidden files are not data
    assert "text" in skipped["notes.txt"]
    assert "empty" in skipped["empty.jpg"]
    assert "PDF" in skipped["doc.png"]
    assert dataset.counts() == [3, 3, 3]
    assert all(path.suffix == ".png" for path, _ in dataset.items)


def test_a_png_with_damaged_pixels_passes_the_scan(tmp_path):
    # The scan reads headers only; training reports such files when it decodes them (tests/webapp).
    root = write_dataset(tmp_path, THREE)
    (root / "red-stripes" / "cut.png").write_bytes(truncated_png())
    assert scan_dataset(root, domain="bird").counts() == [3, 3, 4]


def test_a_missing_folder_is_an_error(tmp_path):
    with pytest.raises(errors.DatasetError, match="is not a folder"):
        scan_dataset(tmp_path / "nowhere", domain="animal")


def test_a_file_instead_of_a_folder_is_an_error(tmp_path):
    (tmp_path / "data.zip").write_bytes(b"PK\x03\x04")
    with pytest.raises(errors.DatasetError, match="is not a folder"):
        scan_dataset(tmp_path / "data.zip", domain="animal")


def test_a_folder_without_class_subfolders_is_an_error(tmp_path):
    (tmp_path / "loose.png").write_bytes(b"")
    (tmp_path / ".git").mkdir()
    with pytest.raises(errors.DatasetError, match="no class subfolders"):
        scan_dataset(tmp_path, domain="animal")


def test_class_folders_without_any_readable_image_are_an_error(tmp_path):
    (tmp_path / "cats").mkdir()
    (tmp_path / "dogs").mkdir()
    (tmp_path / "dogs" / "readme.txt").write_text("todo")
    with pytest.raises(errors.DatasetError, match="holds no readable images"):
        scan_dataset(tmp_path, domain="animal")


def test_a_class_with_fewer_than_two_images_is_refused_naming_it(tmp_path):
    root = write_dataset(tmp_path, {"red-stripes": 3, "green-blocks": 1, "blue-circle": 2})
    (root / "purple-cross").mkdir()
    (root / "red-stripes" / "notes.txt").write_text("skipped files do not count")
    dataset = scan_dataset(root, domain="animal")
    with pytest.raises(errors.DatasetError) as caught:
        check_trainable(dataset)
    message = str(caught.value)
    assert "green-blocks (1)" in message and "purple-cross (0)" in message
    assert "blue-circle" not in message and "red-stripes" not in message


def test_two_images_per_class_are_enough(tmp_path):
    check_trainable(scan_dataset(write_dataset(tmp_path, {"red-stripes": 2, "blue-circle": 2}), domain="bird"))


def test_with_the_models_classes_unknown_folders_keep_index_minus_one(tmp_path):
    root = write_dataset(tmp_path, {"red-stripes": 2, "blue-circle": 2, "purple-cross": 2})
    model_classes = (ClassInfo(0, "red-stripes", "Red", "bird"), ClassInfo(1, "blue-circle", "Blue", "plant"))
    dataset = scan_dataset(root, classes=model_classes)
    assert dataset.classes == model_classes
    by_folder = {path.parent.name: index for path, index in dataset.items}
    assert by_folder == {"red-stripes": 0, "blue-circle": 1, "purple-cross": -1}
    assert len(dataset.items) == 6  # the unknown class is kept, so that evaluation counts it as wrong


def test_a_label_zh_column_gives_chinese_labels_and_classes_without_one_keep_english(tmp_path):
    root = write_dataset(tmp_path, THREE)
    write_csv(root, "red-stripes,Red stripes,bird,红条纹", "blue-circle,Blue circle,plant,", header="folder,label,domain,label_zh")
    dataset = scan_dataset(root, domain="animal")
    assert dataset.labels == {"zh-hans": ["Blue circle", "green-blocks", "红条纹"]}


def test_without_a_label_zh_column_there_are_no_other_languages(tmp_path):
    root = write_dataset(tmp_path, THREE)
    write_csv(root, "red-stripes,Red stripes,bird")
    assert scan_dataset(root, domain="animal").labels == {}
