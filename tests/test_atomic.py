"""Atomic output: complete or absent, and a failed write says which file."""

import os

import pytest

from mdrnn.pipelines.atomic import atomic_write


def test_a_write_lands_whole_and_leaves_no_temporary(tmp_path):
    atomic_write(tmp_path / "sub" / "out.txt", b"text")
    assert (tmp_path / "sub" / "out.txt").read_bytes() == b"text"
    assert os.listdir(tmp_path / "sub") == ["out.txt"]


def test_a_failed_write_names_the_file_and_leaves_nothing(tmp_path, monkeypatch):
    def full_disk(source, target):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", full_disk)
    with pytest.raises(OSError, match=r"out\.txt: No space left on device"):
        atomic_write(tmp_path / "out.txt", b"text")
    assert os.listdir(tmp_path) == []


def test_outputs_get_the_mode_of_a_plain_file(tmp_path):
    mask = os.umask(0o022)
    try:
        atomic_write(tmp_path / "out.txt", b"text")
    finally:
        os.umask(mask)
    assert (tmp_path / "out.txt").stat().st_mode & 0o777 == 0o644
