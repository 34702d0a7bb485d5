"""Expanding transcription inputs: files, folders, glob patterns and list files."""

from pathlib import Path

import pytest

from mdrnn.errors import InputError
from mdrnn.pipelines.inputs import InputFile, check_unique_names, expand_inputs


@pytest.fixture
def tree(tmp_path, monkeypatch):
    """scans/{a.png, b.tif, a.gt.txt, notes.md, book/c.jpg, book/deep/d.png} under tmp_path."""
    monkeypatch.chdir(tmp_path)
    for name in ["a.png", "b.tif", "a.gt.txt", "notes.md", "book/c.jpg", "book/deep/d.png"]:
        path = tmp_path / "scans" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
    return Path("scans")


def _names(files):
    return [(f.path.as_posix(), f.name) for f in files]


def test_folder_is_searched_recursively_and_names_keep_subfolders(tree):
    assert _names(expand_inputs(["scans"])) == [
        ("scans/a.png", "a"), ("scans/b.tif", "b"), ("scans/book/c.jpg", "book/c"),
        ("scans/book/deep/d.png", "book/deep/d")]


def test_glob_names_are_relative_to_the_pattern_root(tree):
    assert _names(expand_inputs(["scans/book/**/*.*"])) == [
        ("scans/book/c.jpg", "c"), ("scans/book/deep/d.png", "deep/d")]
    assert _names(expand_inputs(["scans/*"])) == [("scans/a.png", "a"), ("scans/b.tif", "b")]


def test_files_keep_their_order_lose_duplicates_and_ground_truth(tree):
    files = expand_inputs(["scans/b.tif", "scans/a.gt.txt", "scans", "./scans/a.png"])
    assert _names(files) == [
        ("scans/b.tif", "b"), ("scans/a.png", "a"), ("scans/book/c.jpg", "book/c"),
        ("scans/book/deep/d.png", "book/deep/d")]


def test_list_file_reads_first_column_relative_to_its_folder(tree):
    listing = tree / "list.tsv"
    listing.write_text("# comment\nbook/c.jpg\tsome text\n\nmissing.png\n/abs/x.png\n",
                       encoding="utf-8")
    assert _names(expand_inputs([str(listing)])) == [
        ("scans/book/c.jpg", "book/c"), ("scans/missing.png", "missing"),
        ("/abs/x.png", "x")]


@pytest.mark.parametrize("spec, message", [
    ("nothing", "nothing: no such file or folder"),
    ("empty", "empty: no images"),
    ("scans/*.gif", "the pattern matches no image files"),
    ("empty.txt", "empty.txt: lists no images"),
])
def test_errors_name_the_argument(tree, spec, message):
    Path("empty").mkdir()
    Path("empty.txt").write_text("\n# nothing\n", encoding="utf-8")
    with pytest.raises(InputError, match=message):
        expand_inputs([spec])


def test_only_ground_truth_is_no_input(tree):
    with pytest.raises(InputError, match="no input images"):
        expand_inputs(["scans/a.gt.txt"])


def test_output_name_collisions_are_refused():
    check_unique_names([InputFile(Path("a/1.png"), "a/1"), InputFile(Path("b/1.png"), "b/1")])
    with pytest.raises(InputError, match=r"a/1.png and b/1.png would both be written as '1'"):
        check_unique_names([InputFile(Path("a/1.png"), "1"), InputFile(Path("b/1.png"), "1")])
