"""`easyocc export {onnx,torchscript,parity,lint,fp16-check,int8,engine}`: JSON reports on stdout, progress on stderr.

Each subcommand imports only what it needs: `lint` needs onnx, `engine` tensorrt and pycuda,
the others torch and the training package.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from easyocc.commands import options
from easyocc.commands.export_int8 import add_int8_parser, cmd_int8
from easyocc.commands.options import emit as _emit
from easyocc.commands.options import say as _say
from easyocc.runtime.contract.errors import EasyOccError

VERSIONS = ("8.5", "8.6", "10.x")


def _model_args(parser: argparse.ArgumentParser, help: str = "trained checkpoint (.pt)", append: bool = False) -> None:
    options.add_model(parser, help=help, append=append)  # required, checked in _load (an old spelling may give it)
    options.add_deprecated(parser, "--checkpoint", "--model", "model", append=append)
    parser.add_argument("--rig", help="camera rig YAML (default: the nuScenes rig)")
    parser.add_argument("--data", help="nuScenes-layout dataset for real frames (real or synthetic world)")
    parser.add_argument("--frames", type=int, default=4, help="synthetic frames (default 4)")
    parser.add_argument("--real-frames", type=int, default=4, help="dataset frames when --data is given (default 4)")
    parser.add_argument("--threads", type=int, default=None, help="ONNX Runtime intra-op threads")
    parser.add_argument("--json", dest="json_path", help="also write the JSON report to this file")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="easyocc export", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    onnx = sub.add_parser("onnx", help="checkpoint -> ONNX with manifest, lint and parity")
    _model_args(onnx)
    onnx.add_argument("--out", required=True, help="output .onnx path")
    onnx.add_argument("--skip-parity", action="store_true", help="do not compare against torch")
    onnx.add_argument("--no-simplify", action="store_true", help="skip onnxslim")
    onnx.add_argument("--min-agreement", type=float, default=0.999, help="class agreement required (0.999)")
    onnx.add_argument("--model-version", default="0", help="version string stored in the manifest")
    onnx.add_argument("--training-data", default="unspecified", help="training data description for the manifest")
    onnx.add_argument(
        "--resize-in-graph",
        action="store_true",
        help="images in at the rig's camera resolution, resized inside the graph (parity vs the CPU resize on --data)",
    )

    script = sub.add_parser("torchscript", help="checkpoint -> TorchScript for the runtime's torch backend")
    _model_args(script)
    script.add_argument("--out", required=True, help="output .ts path")

    parity = sub.add_parser("parity", help="ONNX Runtime vs torch eager on synthetic and real frames")
    _model_args(parity, help="the checkpoint (.pt) and the exported model (.onnx): --model twice", append=True)
    options.add_deprecated(parity, "--onnx", "--model", "model", append=True)
    parity.add_argument("--min-agreement", type=float, default=0.999)

    lint = sub.add_parser("lint", help="TensorRT compatibility lint of an ONNX model")
    options.add_model(lint, help="model.onnx")
    lint.add_argument("model_file", nargs="?", help=argparse.SUPPRESS)  # the old positional spelling
    lint.add_argument("--versions", nargs="+", default=list(VERSIONS), choices=VERSIONS)
    lint.add_argument("--json", dest="json_path", help="also write the JSON report to this file")

    fp16 = sub.add_parser("fp16-check", help="float16 readiness on the CPU (emulation, overflow per module)")
    _model_args(fp16)

    add_int8_parser(sub)

    engine = sub.add_parser("engine", help="ONNX -> TensorRT engine with sidecar manifest and cache")
    options.add_model(engine, help="ONNX model (.onnx) from easyocc export onnx (required)")
    options.add_deprecated(engine, "--onnx", "--model", "model")
    engine.add_argument("--out", help="engine path (default: <onnx stem>.<precision>.sm<cc>.trt<ver>.engine)")
    engine.add_argument("--precision", choices=("fp32", "fp16", "int8"), default="fp16")
    engine.add_argument("--workspace-mib", type=int, default=2048, help="builder workspace limit (MiB)")
    engine.add_argument("--dla-core", type=int, default=-1, help="DLA core (Orin: 0 or 1), GPU fallback on")
    engine.add_argument("--timing-cache", help="timing cache file, read and updated")
    engine.add_argument("--calib-data", help="INT8: nuScenes-layout dataset with the calibration frames")
    engine.add_argument("--calib-cache", help="INT8: calibration cache file (default beside the ONNX)")
    engine.add_argument("--calib-frames", type=int, default=64, help="INT8: frames to calibrate with (64)")
    group = engine.add_mutually_exclusive_group()
    group.add_argument("--no-rebuild", action="store_true", help="refuse instead of rebuilding a stale engine")
    group.add_argument("--force-rebuild", action="store_true", help="rebuild even when the cache matches")
    engine.add_argument("--verify-frames", type=int, default=2, help="engine vs ONNX Runtime frames (0: skip)")
    engine.add_argument("--min-agreement", type=float, default=0.99, help="class agreement the engine needs")
    engine.add_argument("--rig", help="camera rig YAML for verification tables (default: nuScenes rig)")
    options.add_verbose(engine, help="TensorRT verbose log")
    engine.add_argument("--json", dest="json_path")
    return parser


def _by_suffix(models, suffixes: tuple[str, ...], what: str) -> str:
    """The one --model (of one or several) whose suffix is in `suffixes`."""
    models = [models] if isinstance(models, str) else list(models or ())
    found = [m for m in models if Path(m).suffix.lower() in suffixes]
    if len(found) != 1:
        raise EasyOccError(f"give the {what} ({'/'.join(suffixes)}) once with --model; got {models}")
    return found[0]


def _rig(path):
    from easyocc.calibration import default_rig, load_rig

    return load_rig(path) if path else default_rig()


def _load(args):
    """(model, manifest, rig) from --model (the checkpoint) and --rig, the rig checked against the model."""
    from easyocc.training.model import load_checkpoint, manifest_for

    model, config = load_checkpoint(_by_suffix(args.model, (".pt",), "checkpoint"))
    manifest = manifest_for(
        config,
        training_data=getattr(args, "training_data", "unspecified"),
        model_version=getattr(args, "model_version", "0"),
    )
    rig = _rig(args.rig)
    manifest.check_rig(rig.names)
    return model, manifest, rig


def _feeds(args, manifest, rig):
    """[(source, feed)]: synthetic frames, then real dataset frames when --data is given."""
    from easyocc.export.feeds import dataset_feeds, synthetic_feeds

    pairs = [("synthetic", feed) for feed in synthetic_feeds(manifest, rig, args.frames)]
    if args.data:
        pairs += [("dataset", feed) for feed in dataset_feeds(manifest, args.data, count=args.real_frames)]
    return pairs


def _parity(args, model, manifest, rig, onnx_path) -> dict:
    from easyocc.export.parity import compare_onnx_to_torch

    report = compare_onnx_to_torch(
        model, onnx_path, _feeds(args, manifest, rig), len(manifest.class_names), args.min_agreement, args.threads
    )
    _say(report.summary())
    return report.to_dict()


def cmd_onnx(args) -> int:
    from easyocc.export.lint import lint_model
    from easyocc.export.onnx_export import export_onnx

    model, manifest, rig = _load(args)
    _say(f"exporting {manifest.summary()}")
    if args.resize_in_graph:
        return _onnx_in_graph_resize(args, model, manifest, rig)
    result = export_onnx(model, manifest, args.out, simplified=not args.no_simplify)
    _say(f"wrote {result.path} ({result.nodes} nodes, sha256 {result.sha256[:12]})")
    lint = lint_model(result.path)
    for issue in lint.issues:
        _say(issue.line())
    out = {"export": result.to_dict(), "lint": lint.to_dict(), "parity": None}
    if not args.skip_parity:
        out["parity"] = _parity(args, model, manifest, rig, result.path)
    _emit(out, args.json_path)
    lint.raise_for_errors()
    if out["parity"] is not None and not out["parity"]["passed"]:
        raise EasyOccError(
            f"parity failed: class agreement {100 * out['parity']['worst_frame_agreement']:.4f} % "
            f"< {100 * args.min_agreement:.2f} % (ONNX kept at {result.path} for inspection)"
        )
    return 0


def _onnx_in_graph_resize(args, model, manifest, rig) -> int:
    from easyocc.export.in_graph_resize import export_in_graph_resize
    from easyocc.export.lint import lint_model

    if args.no_simplify:
        raise EasyOccError("--resize-in-graph exports simplified models only; drop --no-simplify")
    data = None if args.skip_parity else args.data
    if data is None and not args.skip_parity:
        raise EasyOccError("--resize-in-graph checks parity on real frames: give --data DATASET (or --skip-parity)")
    result, parity = export_in_graph_resize(model, manifest, rig, args.out, data, args.real_frames, args.min_agreement)
    _say(f"wrote {result.path} ({result.nodes} nodes, sha256 {result.sha256[:12]})")
    lint = lint_model(result.path)
    if parity is not None:
        _say(parity.summary())
    out = {"export": result.to_dict(), "lint": lint.to_dict(), "resize_parity": parity and parity.to_dict()}
    _emit(out, args.json_path)
    lint.raise_for_errors()
    if parity is not None and not parity.passed:
        raise EasyOccError(
            f"in-graph resize parity failed: class agreement {100 * parity.worst:.4f} % < "
            f"{100 * args.min_agreement:.2f} % (ONNX kept at {result.path} for inspection)"
        )
    return 0


def cmd_torchscript(args) -> int:
    from easyocc.export.torchscript_export import compare_torchscript, export_torchscript

    model, manifest, rig = _load(args)
    path = export_torchscript(model, manifest, args.out)
    _say(f"wrote {path}; checking it through the runtime's torch runner")
    report = compare_torchscript(model, path, _feeds(args, manifest, rig), len(manifest.class_names))
    _say(report.summary())
    _emit({"torchscript": str(path), "parity": report.to_dict()}, args.json_path)
    report.raise_if_failed()
    return 0


def cmd_parity(args) -> int:
    from easyocc.export.onnx_model import read_manifest

    model, manifest, rig = _load(args)
    exported = _by_suffix(args.model, (".onnx",), "exported model")
    stored = read_manifest(exported)
    for name in ("camera_names", "input_size", "grid", "view_transform", "inputs", "outputs"):
        if getattr(stored, name) != getattr(manifest, name):
            raise EasyOccError(f"{exported} was not exported from this checkpoint: manifest field '{name}' differs")
    data = _parity(args, model, manifest, rig, exported)
    _emit(data, args.json_path)
    return 0 if data["passed"] else 1


def cmd_lint(args) -> int:
    from easyocc.export.lint import lint_model

    if args.model_file:
        _say("easyocc: the positional model of export lint is deprecated; use --model")
    if not (args.model or args.model_file):
        raise EasyOccError("export lint: give the model with --model M.onnx")
    report = lint_model(args.model or args.model_file, versions=args.versions)
    for issue in report.issues:
        _say(issue.line())
    _say(
        f"lint {'OK' if report.ok else 'FAILED'}: {report.node_count} nodes, opset {report.opset}, "
        f"{len(report.errors)} error(s), {len(report.warnings)} warning(s) for TensorRT {', '.join(report.versions)}"
    )
    _emit(report.to_dict(), args.json_path)
    return 0 if report.ok else 1


def cmd_fp16(args) -> int:
    from easyocc.export.fp16_check import check_fp16

    model, manifest, rig = _load(args)
    report = check_fp16(model, manifest, _feeds(args, manifest, rig))
    _say(report.summary())
    _emit(report.to_dict(), args.json_path)
    return 0


def cmd_engine(args) -> int:
    from easyocc.export.engine_build import build_or_reuse
    from easyocc.export.trt_builder import BuildOptions

    options = BuildOptions(
        precision=args.precision,
        workspace_mib=args.workspace_mib,
        dla_core=args.dla_core,
        timing_cache=Path(args.timing_cache) if args.timing_cache else None,
        calibration_cache=Path(args.calib_cache) if args.calib_cache else None,
        calibration_frames=args.calib_frames,
        verbose=args.verbose,
    )
    rebuild = "never" if args.no_rebuild else "always" if args.force_rebuild else "auto"
    report = build_or_reuse(
        _by_suffix(args.model, (".onnx",), "ONNX model"),
        options,
        engine_path=args.out,
        rebuild=rebuild,
        calib_data=args.calib_data,
        verify_frames=args.verify_frames,
        min_agreement=args.min_agreement,
        rig=_rig(args.rig) if args.rig else None,
        log=_say,
    )
    _emit(report.to_dict(), args.json_path)
    return 0


COMMANDS = {
    "onnx": cmd_onnx,
    "torchscript": cmd_torchscript,
    "parity": cmd_parity,
    "lint": cmd_lint,
    "fp16-check": cmd_fp16,
    "int8": cmd_int8,
    "engine": cmd_engine,
}


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    options.check_outputs(getattr(args, "out", None), getattr(args, "json_path", None), out_kind="file")
    return COMMANDS[args.command](args)
