"""The CLI vocabulary, defined once: the same flag for the same idea in every command.

`--model` (checkpoint .pt, ONNX, TorchScript .ts or TensorRT engine: by suffix), `--data`, `--scene`
(repeatable), `--frames`, `--out`, `--json`, `-q/--quiet`, `-v/--verbose`; and for commands with a
config dataclass: `--config FILE`, `KEY=VALUE` overrides and `--print-config`, through the one loader
(easyocc.runtime.contract.config). Results go to stdout (or --json), progress and logs to stderr;
errors are raised as EasyOccError and printed once by easyocc.cli.
"""

from __future__ import annotations

import argparse
import logging
import sys

from easyocc.runtime.contract import config as config_system


def add_model(parser, required: bool = False, default=None, help: str | None = None, append: bool = False) -> None:
    text = help or "model: checkpoint (.pt), ONNX (.onnx), TorchScript (.ts) or TensorRT engine (.engine/.plan)"
    if default is not None:
        text += f" (default {default})"
    kwargs = {"action": "append"} if append else {"default": None if default is None else str(default)}
    parser.add_argument("--model", required=required, help=text, **kwargs)


def add_data(parser, required: bool = False, help: str = "nuScenes-layout dataset folder (real or synthetic)"):
    parser.add_argument("--data", required=required, default=None, help=help)


def add_scene(parser, help: str = "only this scene (repeatable; default: all scenes)") -> None:
    parser.add_argument("--scene", action="append", default=None, help=help)


def add_frames(parser, help: str = "stop after this many frames", default=None) -> None:
    parser.add_argument("--frames", type=int, default=default, help=help)


def add_out(parser, required: bool = False, default=None, help: str = "output folder") -> None:
    parser.add_argument("--out", required=required, default=default, help=help)


def add_json(parser, help: str = "also write the results to this JSON file") -> None:
    parser.add_argument("--json", default=None, metavar="FILE", help=help)


def add_quiet(parser) -> None:
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


def add_verbose(parser, help: str = "more log lines on stderr") -> None:
    parser.add_argument("-v", "--verbose", action="store_true", help=help)


def add_deprecated(parser, old: str, new: str, dest: str, *, flag: bool = False, type=None, append: bool = False):
    """A hidden old spelling of `new` that still works and prints a one-line deprecation to stderr."""

    class Deprecated(argparse.Action):
        def __call__(self, parser, namespace, values, option_string=None):
            print(f"easyocc: {old} is deprecated; use {new}", file=sys.stderr)
            if flag:
                setattr(namespace, dest, True)
            elif append:
                setattr(namespace, dest, [*(getattr(namespace, dest, None) or []), values])
            else:
                setattr(namespace, dest, values)

    parser.add_argument(
        old, dest=f"deprecated_{dest}", nargs=0 if flag else None, type=type, action=Deprecated,
        default=argparse.SUPPRESS, help=argparse.SUPPRESS,
    )  # fmt: skip


def add_config(parser: argparse.ArgumentParser, cls, overrides: bool = True) -> None:
    """--config FILE, KEY=VALUE overrides and --print-config for the config dataclass `cls`; the epilog
    of --help lists every field with its type, default, bounds and docstring."""
    parser.add_argument("--config", default=None, metavar="FILE", help=f"YAML file of {cls.__name__} fields")
    parser.add_argument("--print-config", action="store_true", help="print the effective config (YAML) and exit")
    if overrides:
        parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides (dotted keys)")
    fields = "\n".join(f"  {line}" for line in config_system.describe(cls))
    parser.epilog = f"config fields ({cls.__name__}; --config FILE, KEY=VALUE, --print-config):\n{fields}"
    parser.formatter_class = argparse.RawDescriptionHelpFormatter


def resolve_config(cls, args, flags: dict | None = None):
    """The effective config: --config file, then the flags that set config fields ({dotted key: value},
    None = not given), then the KEY=VALUE overrides."""
    values = {key: value for key, value in (flags or {}).items() if value is not None}
    return config_system.load(cls, args.config, getattr(args, "overrides", None) or (), values)


def print_config(config) -> int:
    print(config_system.to_yaml(config), end="")
    return 0


def setup_logging(verbose: bool = False, quiet: bool = False) -> None:
    """Logs to stderr: INFO by default, DEBUG with -v, WARNING with -q."""
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
