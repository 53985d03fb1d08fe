"""Command-line manners shared by ``camwarden-agent``, ``camwarden-server`` and
``camwarden-lab``: every subcommand has a one-line help and an example in its epilog, and the
libraries' own log lines stay quiet unless asked for."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Iterator, Mapping

__all__ = ["QUIET_LIBRARIES", "document", "quiet_libraries", "subcommands"]

# libraries whose INFO lines (font subsetting, migrations, HTTP requests) mean nothing to a user
QUIET_LIBRARIES = ("fontTools", "alembic", "httpx", "httpcore", "asyncio", "urllib3", "fpdf")


def subcommands(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.Action | None, argparse.ArgumentParser]]:
    """Every subcommand, depth first: its path (``("vault", "set")``), the pseudo-action that
    holds its one-line help in the parent's list, and its parser."""
    for action in parser._actions:  # argparse keeps subparsers only here
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice for choice in action._choices_actions}
            for name, sub in action.choices.items():
                yield (*path, name), helps.get(name), sub
                yield from subcommands(sub, (*path, name))


def document(
    parser: argparse.ArgumentParser,
    examples: Mapping[str, str],
    helps: Mapping[str, str] | None = None,
) -> argparse.ArgumentParser:
    """Give each subcommand (by its path, ``"vault set"``) its example as an epilog and, from
    ``helps``, the one-line help it was created without."""
    for path, found, sub in subcommands(parser):
        name = " ".join(path)
        line = found
        if helps and name in helps:
            line = found or _add_help_line(parser, path, helps[name])
            line.help = helps[name]
        if line is not None and line.help and sub.description is None:
            sub.description = line.help[0].upper() + line.help[1:] + "."
        example = examples.get(name)
        if example:
            lines = "\n".join(f"  {text}" for text in example.splitlines())
            sub.epilog = (
                f"{sub.epilog}\n\nexample:\n{lines}" if sub.epilog else f"example:\n{lines}"
            )
            sub.formatter_class = argparse.RawDescriptionHelpFormatter
    return parser


def _add_help_line(
    parser: argparse.ArgumentParser, path: tuple[str, ...], text: str
) -> argparse.Action:
    """The one-line help of a subcommand created without one, in the parent's list at the
    subcommand's place."""
    for action in _parent(parser, path[:-1])._actions:
        if isinstance(action, argparse._SubParsersAction) and path[-1] in action.choices:
            line = argparse.Action(option_strings=[], dest=path[-1], help=text, metavar=path[-1])
            lines = [*action._choices_actions, line]
            order = list(action.choices)
            action._choices_actions[:] = sorted(lines, key=lambda a: order.index(a.dest))
            return line
    raise KeyError(" ".join(path))


def _parent(parser: argparse.ArgumentParser, path: tuple[str, ...]) -> argparse.ArgumentParser:
    for sub_path, _line, sub in subcommands(parser):
        if sub_path == path:
            return sub
    return parser


def quiet_libraries(verbose: bool) -> None:
    """Libraries log warnings only, unless ``-v`` asked for everything."""
    for name in QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(logging.DEBUG if verbose else logging.WARNING)
