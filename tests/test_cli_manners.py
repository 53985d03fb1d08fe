"""CLI manners of camwarden-agent, camwarden-server and camwarden-lab: every subcommand has a
one-line help and an example, and no developer words reach the screen; ``scan`` shows its
progress on a terminal only."""

from __future__ import annotations

import argparse
import logging
import os
import pty
import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from agent.cli import _parser as agent_parser
from lab.cli import _parser as lab_parser
from protocol.cliparse import subcommands
from server.cli import parser as server_parser
from tests.agent.support import AGENT, make_home
from tests.support.mosquitto import free_port

PARSERS: dict[str, Callable[[], argparse.ArgumentParser]] = {
    "camwarden-agent": agent_parser,
    "camwarden-server": server_parser,
    "camwarden-lab": lab_parser,
}
DEVELOPER = re.compile(
    r"TODO|FIXME|XXX|argv|kwargs|Namespace|``|->|\bADR\b|\bNone\b|\bdef\b|\.py\b"
)


def _all() -> list[tuple[str, tuple[str, ...], argparse.Action | None, argparse.ArgumentParser]]:
    return [
        (program, path, line, sub)
        for program, build in PARSERS.items()
        for path, line, sub in subcommands(build())
    ]


@pytest.mark.parametrize("program", PARSERS)
def test_top_level_help_has_no_developer_words(program: str) -> None:
    text = PARSERS[program]().format_help()
    assert DEVELOPER.search(text) is None, text


@pytest.mark.parametrize(
    ("program", "path", "line", "sub"), _all(), ids=lambda v: v if isinstance(v, str) else ""
)
def test_every_subcommand_has_help_and_example(
    program: str, path: tuple[str, ...], line: argparse.Action | None, sub: argparse.ArgumentParser
) -> None:
    name = " ".join(path)
    assert line is not None
    assert line.help, f"{program} {name}: no one-line help"
    assert "\n" not in line.help
    assert sub.epilog, f"{program} {name}: no epilog"
    example = sub.epilog.split("example:\n", 1)
    assert len(example) == 2, f"{program} {name}: no example"
    assert example[1].strip().startswith(f"{program} ")
    assert f" {path[0]}" in example[1]  # an example of this very command
    text = sub.format_help()
    found = DEVELOPER.search(text)
    assert found is None, f"{program} {name}: {found.group(0)!r} in\n{text}"


def _scan(tmp_path: Path, *, stderr_tty: bool) -> tuple[str, str]:
    """``scan --once`` of two cameras on loopback ports where nothing listens; stdout is a
    pipe, stderr a terminal or a pipe."""
    cameras = "".join(
        f'[[cameras]]\nid = "cam{n}"\naddress = "127.0.0.1"\nhttp_port = {free_port()}\n'
        f"https_port = {free_port()}\nrtsp_port = {free_port()}\n"
        for n in (1, 2)
    )
    config = make_home(
        tmp_path, free_port(), extra=f"[audit]\nguess_default_credentials = false\n{cameras}"
    )
    command = [*AGENT, "scan", "--once", "--config", str(config)]
    if not stderr_tty:
        done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
        return done.stdout, done.stderr
    leader, follower = pty.openpty()
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=follower, text=True) as child:
        os.close(follower)
        chunks = []
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
        out = child.stdout.read() if child.stdout else ""
        child.wait(timeout=300)
    os.close(leader)
    return out, b"".join(chunks).decode(errors="replace")


def test_scan_shows_progress_on_a_terminal_only(tmp_path: Path) -> None:
    out, err = _scan(tmp_path, stderr_tty=True)
    assert "2/2 cameras" in err
    assert "cameras" not in out.split("CAMERA", 1)[0]  # the table alone on stdout
    assert "cam1" in out
    out, err = _scan(tmp_path, stderr_tty=False)
    assert "/2 cameras" not in err + out


@pytest.mark.parametrize("verbose", [False, True])
def test_library_logging_is_quiet_unless_verbose(
    tmp_path: Path, verbose: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    from server.cli import main  # noqa: PLC0415

    flags = ["-v"] if verbose else []
    assert main([*flags, "--set", f"state_dir={tmp_path}", "check-config"]) == 0
    capsys.readouterr()
    chatty = logging.getLogger("fontTools.subset")
    assert chatty.isEnabledFor(logging.INFO) is verbose
    assert logging.getLogger("alembic.runtime.migration").isEnabledFor(logging.INFO) is verbose
