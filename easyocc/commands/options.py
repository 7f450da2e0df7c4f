"""The CLI vocabulary, defined once: the same flag for the same idea in every command.

`--model` (checkpoint .pt, ONNX, TorchScript .ts or TensorRT engine: by suffix), `--data`, `--scene`
(repeatable), `--frames`, `--out`, `--json`, `-q/--quiet`, `-v/--verbose`; and for commands with a
config dataclass: `--config FILE`, `KEY=VALUE` overrides and `--print-config`, through the one loader
(easyocc.runtime.contract.config). Results go to stdout (or --json), progress and logs to stderr;
errors are raised as EasyOccError and printed once by easyocc.cli.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
from pathlib import Path

from easyocc.runtime.contract import config as config_system
from easyocc.runtime.contract.errors import EasyOccError


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


def check_output(path, flag: str = "--out", kind: str = "folder") -> None:
    """Refuse an output that cannot be written, with one line, before any work: kind 'folder' (--out
    of most commands) must not be an existing file, kind 'file' (--json, an exported model, an
    overlay PNG) not an existing folder; the nearest existing folder above it must be a folder in
    which a file can be created (probed, so read-only file systems and permissions both count)."""
    if not path:
        return
    target = Path(path)
    if kind == "folder" and target.exists() and not target.is_dir():
        raise EasyOccError(f"{flag} {path}: is a file, expected a folder")
    if kind == "file" and target.is_dir():
        raise EasyOccError(f"{flag} {path}: is a folder, expected a file path")
    existing = target if kind == "folder" and target.is_dir() else target.parent
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise EasyOccError(f"{flag} {path}: {existing} is a file, expected a folder")
    try:
        with tempfile.TemporaryFile(dir=existing, prefix=".easyocc-probe-"):
            pass
    except OSError as exc:
        raise EasyOccError(f"{flag} {path}: cannot write in {existing} ({exc.strerror or exc})") from None


def require_modules(*modules: str) -> None:
    """Refuse up front, before any work, a run that would stop midway on an optional dependency
    that is not installed: ModuleNotFoundError, which easyocc.cli.run_command prints as one line naming
    the extra that installs it."""
    import importlib.util

    for module in modules:
        if importlib.util.find_spec(module) is None:
            raise ModuleNotFoundError(f"No module named '{module}'", name=module)


def check_outputs(out=None, json=None, out_kind: str = "folder") -> None:
    """check_output for a command's --out (a folder, or a file with out_kind='file') and --json."""
    check_output(out, "--out", out_kind)
    check_output(json, "--json", "file")


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


def add_runtime_options(parser) -> None:
    """Flags of RuntimeConfig (stream, bench, demo): model, backend, threads, rig, frame policy."""
    add_model(
        parser,
        help="model: ONNX (.onnx), TensorRT engine (.engine/.plan) or TorchScript (.ts); default: the bundled model",
    )
    parser.add_argument("--backend", default=None, help="onnxruntime | tensorrt | torch (default: from the suffix)")
    parser.add_argument("--threads", type=int, default=None, help="backend intra-op threads (default: all cores)")
    parser.add_argument("--rig", default=None, help="rig YAML for --images (default: the nuScenes rig)")
    parser.add_argument("--missing-camera", choices=("drop", "zero"), default=None, help="policy for an absent camera")
    parser.add_argument("--sync-tolerance-ms", type=float, default=None, help="max camera stamp spread in a frame")
    parser.add_argument(
        "--ahead-priority",
        choices=("auto", "low", "normal"),
        default=None,
        help="priority of the preprocessing done while the backend still runs an earlier frame: low (nice 19), "
        "normal, or auto (the default: low without --live when the backend computes on the host's CPU)",
    )


def default_model() -> str:
    """The bundled model's path (what --model defaults to)."""
    from easyocc.runtime.streaming import default_model as bundled

    return str(bundled())


def runtime_values(args, prefix: str = "runtime.") -> dict:
    """{dotted RuntimeConfig key: flag value} for resolve_config."""
    names = ("model", "backend", "threads", "rig", "missing_camera", "sync_tolerance_ms", "ahead_priority")
    values = {f"{prefix}{name}": getattr(args, name, None) for name in names}
    if not values[f"{prefix}model"]:
        values[f"{prefix}model"] = default_model()
    return values


def add_source_options(parser, images: bool = True) -> None:
    """Flags of SourceConfig: --data or --images, --scene (repeatable), pacing and loops."""
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--data", default=None, help="nuScenes-layout dataset folder")
    if images:
        source.add_argument("--images", default=None, help="image folder with one sub-folder per camera")
    add_scene(parser, help="scene of --data (repeatable, played in order; default: all scenes)")
    parser.add_argument(
        "--paced", action="store_true", help="replay at the recorded timestamps, not as fast as possible"
    )
    parser.add_argument("--speed", type=float, default=None, help="replay speed factor with --paced (default 1)")
    parser.add_argument(
        "--loops", type=int, default=None, help="repeat the replay this many times (stamps keep rising)"
    )


def source_values(args, prefix: str = "source.") -> dict:
    """{dotted SourceConfig key: flag value} for resolve_config."""
    return {
        f"{prefix}data": args.data,
        f"{prefix}images": getattr(args, "images", None),
        f"{prefix}scenes": args.scene,
        f"{prefix}paced": args.paced or None,
        f"{prefix}speed": args.speed,
        f"{prefix}loops": args.loops,
    }


def say(message: str) -> None:
    """A progress or log line: to stderr, so stdout holds only results."""
    print(message, file=sys.stderr, flush=True)


def emit(data: dict, json_path) -> None:
    """A command's result: JSON to stdout, and to `json_path` (atomically) when given."""
    print(json.dumps(data, indent=2))
    if json_path:
        from easyocc.runtime.contract.fileio import write_json_atomic

        write_json_atomic(json_path, data)
