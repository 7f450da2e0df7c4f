"""The `easyocc` console entry: one subcommand per job, each owned and lazily imported by its package.

`easyocc --help` imports nothing but this module, so it works with the base dependencies only.
Each subcommand module exposes `main(argv: list[str]) -> int`.
"""

from __future__ import annotations

import importlib
import sys

from easyocc.calibration.errors import EasyOccError

# name -> (module implementing it, one-line help, extra that provides its dependencies)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "demo": (
        "easyocc.commands.demo",
        "main job: synthetic scene -> bundled model (ONNX Runtime) -> latency table + preview",
        "base",
    ),
    "calib": ("easyocc.commands.calib", "camera rig checks: lidar-to-image overlay with motion compensation", "base"),
    "synth": (
        "easyocc.commands.synth",
        "generate a synthetic nuScenes-layout dataset with exact Occ3D ground truth",
        "base",
    ),
    "labels": ("easyocc.commands.labels", "build 3D pseudo-labels from foundation-model semantics and depth", "train"),
    "train": ("easyocc.commands.train", "train an EasyOcc model from (pseudo-)labels", "train"),
    "eval": ("easyocc.commands.eval", "evaluate a checkpoint with the Occ3D metric", "train"),
    "report": ("easyocc.commands.report", "FLOPs and parameters of the model variants", "train"),
    "export": ("easyocc.commands.export", "ONNX export with parity and lint; TensorRT engines", "export"),
    "stream": ("easyocc.commands.stream", "run the streaming runtime on a dataset or image folder", "base"),
    "bench": ("easyocc.commands.bench", "latency benchmark per stage and per backend, JSON output", "base"),
    "ros": ("easyocc.commands.ros", "run the ROS 2 node, or play a dataset as camera topics", "ros"),
}


def _usage() -> str:
    lines = ["usage: easyocc <command> [options]", "", "commands:"]
    lines += [f"  {name:<8} {help_text}" for name, (_, help_text, _) in COMMANDS.items()]
    lines += ["", "`easyocc <command> --help` describes a command's options."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0
    if argv[0] == "--version":
        from easyocc import __version__

        print(__version__)
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"easyocc: unknown command '{name}'\n\n{_usage()}", file=sys.stderr)
        return 2
    module_name, _, extra = COMMANDS[name]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        return _missing_module(name, exc, extra)
    return run_command(name, module.main, rest)


# Modules whose distribution is named differently (the others: the module name is the package name).
DISTRIBUTION_OF = {"cv2": "opencv-python-headless", "yaml": "pyyaml", "PIL": "pillow", "tensorrt": "tensorrt"}


def extra_providing(module: str, default: str) -> str:
    """The extra of easyocc that installs `module` (from the package's own metadata), else `default`."""
    from importlib import metadata

    wanted = {DISTRIBUTION_OF.get(module, module), f"ros-jazzy-{module}"}
    wanted = {w.lower().replace("_", "-") for w in wanted}
    try:
        requirements = metadata.requires("easyocc") or []
    except metadata.PackageNotFoundError:
        return default
    for line in requirements:
        spec, _, marker = line.partition(";")
        package = spec.strip().split(" ")[0].split("[")[0]
        for stop in "<>=!~":
            package = package.split(stop)[0]
        if package.lower().replace("_", "-") in wanted and "extra ==" in marker:
            return marker.split("extra ==")[1].strip().strip("'\"")
    return default


def _missing_module(name: str, exc: ModuleNotFoundError, extra: str) -> int:
    """One line for an optional dependency that is not installed; a missing easyocc module is a bug."""
    module = (exc.name or "").split(".")[0]
    if not module or module == "easyocc":
        raise exc
    extra = extra_providing(module, extra)
    how = (
        "source a ROS 2 Jazzy installation (setup.bash)"
        if extra == "ros"
        else f"install it with: pip install 'easyocc[{extra}]'"
    )
    print(f"easyocc {name}: needs '{module}' (extra '{extra}'), which is not installed; {how}", file=sys.stderr)
    return 2


def run_command(name: str, command_main, argv: list[str]) -> int:
    """Run a command's main with the one error printer: an EasyOccError is one line on stderr, exit 2;
    an optional dependency imported lazily during the command and not installed is one line naming
    its extra, exit 2."""
    extra = COMMANDS.get(name, ("", "", "base"))[2]
    try:
        return int(command_main(argv) or 0)
    except EasyOccError as exc:
        print(f"easyocc {name}: error: {exc}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as exc:
        return _missing_module(name, exc, extra)
    except KeyboardInterrupt:
        print(f"easyocc {name}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
