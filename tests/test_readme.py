"""The `easyocc ...` commands shown in README.md and docs/readme/*.md use only options the CLI has.

Each command goes through the real `easyocc` entry and its subcommand's real parser; parsing stops
right after argparse has accepted the arguments (nothing runs), and any unknown option fails.
"""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

import pytest

from easyocc.cli import COMMANDS
from easyocc.cli import main as easyocc_main

PROJECT = Path(__file__).resolve().parents[1]
DOCUMENTS = [PROJECT / "README.md", *sorted((PROJECT / "docs" / "readme").glob("*.md"))]


def documented_commands() -> list[tuple[str, list[str]]]:
    """(where, argv after `easyocc`) for every `easyocc ...` line inside a fenced code block."""
    found = []
    for document in DOCUMENTS:
        in_code, pending = False, ""
        for number, line in enumerate(document.read_text().splitlines(), start=1):
            if line.startswith("```"):
                in_code, pending = not in_code, ""
                continue
            if not in_code:
                continue
            line = pending + line.strip()
            if not line.startswith("easyocc "):
                continue
            if line.endswith("\\"):
                pending = line[:-1] + " "
                continue
            pending = ""
            found.append((f"{document.relative_to(PROJECT)}:{number}", shlex.split(line, comments=True)[1:]))
    return found


class Parsed(Exception):  # noqa: N818 (a signal that parsing succeeded, not an error)
    """Raised in place of returning from parse_args: the command was accepted and nothing runs."""


def strict_parse(self, args=None, namespace=None):
    namespace, extras = self.parse_known_args(args, namespace)
    if extras:
        self.error(f"unrecognized arguments: {' '.join(extras)}")
    raise Parsed(namespace)


def strict_intermixed_parse(self, args=None, namespace=None):
    namespace, extras = self.parse_known_intermixed_args(args, namespace)
    if extras:
        self.error(f"unrecognized arguments: {' '.join(extras)}")
    raise Parsed(namespace)


COMMAND_LINES = documented_commands()


def test_the_readme_tours_every_command():
    shown = {argv[0] for where, argv in COMMAND_LINES if where.startswith("README.md")}
    assert shown == set(COMMANDS), f"missing from the README's tour: {sorted(set(COMMANDS) - shown)}"


@pytest.mark.parametrize("where,argv", COMMAND_LINES, ids=[where for where, _ in COMMAND_LINES])
def test_documented_command_parses(where, argv, monkeypatch, capsys):
    if argv[0] == "ros":
        pytest.importorskip("rclpy", reason="easyocc ros needs the ROS 2 wheels (the 'ros' extra)")
    if argv[0] in ("labels", "train", "eval", "report", "export"):
        pytest.importorskip("torch", reason=f"easyocc {argv[0]} needs torch")
    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", strict_parse)
    monkeypatch.setattr(argparse.ArgumentParser, "parse_intermixed_args", strict_intermixed_parse)
    try:
        code = easyocc_main(list(argv))
    except Parsed:
        return
    except SystemExit as exc:  # argparse rejected the arguments
        pytest.fail(f"{where}: `easyocc {shlex.join(argv)}` does not parse ({exc.code}): {capsys.readouterr().err}")
    pytest.fail(f"{where}: `easyocc {shlex.join(argv)}` returned {code} without parsing its arguments")
