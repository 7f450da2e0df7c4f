"""The export README's `easyocc export` commands use only options the CLI really has."""

from __future__ import annotations

import shlex
from pathlib import Path

from easyocc.commands.export import build_parser

README = Path(__file__).resolve().parents[2] / "docs" / "readme" / "export.md"


def readme_commands() -> list[list[str]]:
    commands, in_code = [], False
    for line in README.read_text().splitlines():
        if line.startswith("```"):
            in_code = not in_code
            continue
        if in_code and line.startswith("easyocc export "):
            commands.append(shlex.split(line.split("#")[0])[2:])
    return commands


def test_every_readme_command_parses():
    commands = readme_commands()
    assert {c[0] for c in commands} == {"onnx", "torchscript", "parity", "lint", "fp16-check", "int8", "engine"}
    parser = build_parser()
    for argv in commands:
        parser.parse_args(argv)  # argparse exits (SystemExit) on an unknown option
