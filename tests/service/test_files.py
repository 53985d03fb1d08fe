"""The one atomic writer and the one private-key writer both sides use."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from service.files import atomic_write, write_private


def test_atomic_write_replaces_with_the_mode_and_makes_the_directory(tmp_path: Path) -> None:
    path = tmp_path / "new" / "state.json"
    atomic_write(path, b"one", 0o644)
    atomic_write(path, b"two", 0o600)
    assert path.read_bytes() == b"two"
    assert path.stat().st_mode & 0o777 == 0o600
    assert os.listdir(path.parent) == ["state.json"]


def test_a_failed_atomic_write_leaves_no_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "taken"
    (target / "inside").mkdir(parents=True)  # a directory: the rename over it fails
    with pytest.raises(IsADirectoryError):
        atomic_write(target, b"new")
    assert sorted(os.listdir(tmp_path)) == ["taken"]
    assert os.listdir(target) == ["inside"]


def test_write_private_creates_0600_and_never_overwrites(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "agent.key"
    write_private(path, b"secret", dir_mode=0o700)
    assert path.read_bytes() == b"secret"
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.parent.stat().st_mode & 0o777 == 0o700
    with pytest.raises(FileExistsError):
        write_private(path, b"other")
    assert path.read_bytes() == b"secret"
