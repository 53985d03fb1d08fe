"""The journal lists the commands under way while others are saved and removed beside it: a
save in progress (its temporary file) and an entry removed after the listing are not read as
broken entries."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.commands.journal import Entry, Journal
from agent.errors import StorageError
from service.files import TEMP_PREFIX


def test_a_save_under_way_and_a_removed_entry_are_left_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    journal = Journal(tmp_path / "journal")
    journal.save(Entry(command_id="cmd-a", token="t", step="applying"))
    journal.save(Entry(command_id="cmd-b", token="t"))
    (journal.directory / f"{TEMP_PREFIX}x1.cmd-c.json").write_bytes(b'{"command_id": "cmd-')
    listed = sorted(journal.directory.glob("*.json"))

    def listing_then_b_finishes(_self: Path, _pattern: str) -> list[Path]:
        journal.remove("cmd-b")  # finished between the listing and its read
        return listed

    monkeypatch.setattr(Path, "glob", listing_then_b_finishes)
    assert [(e.command_id, e.step) for e in journal.pending()] == [("cmd-a", "applying")]


def test_a_broken_entry_is_still_an_error(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal")
    journal.save(Entry(command_id="cmd-a", token="t"))
    (journal.directory / "cmd-z.json").write_bytes(b"{not json")
    with pytest.raises(StorageError, match=r"cmd-z\.json"):
        journal.pending()
