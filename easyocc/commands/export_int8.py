"""`easyocc export int8`: float ONNX -> INT8 Q/DQ ONNX calibrated on real frames, linted and compared.

Registered by `easyocc.commands.export`; library code in `easyocc.export.quantize`,
`easyocc.export.int8_check` and `easyocc.export.sensitivity`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from easyocc.runtime.contract.errors import EasyOccError


def add_int8_parser(sub) -> argparse.ArgumentParser:
    from easyocc.export.quantize import CALIBRATION_METHODS, DEFAULT_CALIBRATION_FRAMES

    int8 = sub.add_parser("int8", help="ONNX -> INT8 Q/DQ ONNX (ONNX Runtime static quantizer), checked on the CPU")
    int8.add_argument("--model", required=True, help="float ONNX model from easyocc export onnx")
    int8.add_argument("--data", required=True, help="nuScenes-layout dataset with the calibration frames")
    int8.add_argument("--out", required=True, help="output .onnx path (Q/DQ model, manifest inside)")
    int8.add_argument(
        "--frames", type=int, default=DEFAULT_CALIBRATION_FRAMES, help="calibration frames (default 16, at least 8)"
    )
    int8.add_argument("--stride", type=int, default=2, help="every N-th key frame calibrates (default 2)")
    int8.add_argument("--start", type=int, default=0, help="first calibration key frame (default 0)")
    int8.add_argument("--method", choices=tuple(CALIBRATION_METHODS), default="minmax", help="range calibration")
    int8.add_argument(
        "--keep", action="append", default=[], metavar="PREFIX", help="node-name prefix kept in float (repeatable)"
    )
    int8.add_argument("--fp16-report", help="JSON of easyocc export fp16-check: its flagged modules stay in float")
    int8.add_argument("--eval-frames", type=int, default=4, help="held-out dataset frames for the agreement (4)")
    int8.add_argument("--synthetic-frames", type=int, default=2, help="synthetic frames for the agreement (2)")
    int8.add_argument("--min-agreement", type=float, default=0.99, help="class agreement with float required (0.99)")
    int8.add_argument("--sensitivity", action="store_true", help="also quantize one layer group at a time (slow)")
    int8.add_argument("--threads", type=int, default=None, help="ONNX Runtime intra-op threads")
    int8.add_argument("--json", dest="json_path", help="also write the JSON report to this file")
    return int8


def _flagged_modules(path) -> tuple[str, ...]:
    if not path:
        return ()
    try:
        data = json.loads(Path(path).read_text())
        return tuple(data.get("overflowing_modules", [])) + tuple(data.get("near_overflow_modules", []))
    except (OSError, json.JSONDecodeError, AttributeError) as exc:
        raise EasyOccError(f"--fp16-report {path}: not a readable fp16-check JSON ({exc})") from None


def cmd_int8(args) -> int:
    from easyocc.commands.options import emit as _emit
    from easyocc.commands.options import say as _say
    from easyocc.export.int8_check import check_int8, heldout_feeds
    from easyocc.export.lint import lint_model
    from easyocc.export.quantize import Int8Options, quantize_int8

    options = Int8Options(
        frames=args.frames,
        stride=args.stride,
        start=args.start,
        method=args.method,
        keep=tuple(args.keep),
        fp16_modules=_flagged_modules(args.fp16_report),
    )
    result = quantize_int8(args.model, args.data, args.out, options, log=_say)
    info = result.manifest.quantization
    _say(
        f"wrote {result.path} ({result.bytes / 1e6:.1f} MB, float {result.source_bytes / 1e6:.1f} MB): "
        f"{info.quantized_nodes} convolutions in INT8, kept in float: "
        + ", ".join(f"{reason} ({len(names)} nodes)" for reason, names in info.kept_out.items())
    )
    lint = lint_model(result.path)
    for issue in lint.issues:
        _say(issue.line())
    feeds = heldout_feeds(result.manifest, args.data, options, args.eval_frames, args.synthetic_frames)
    out = {"int8": result.to_dict(), "lint": lint.to_dict(), "agreement": None, "sensitivity": None}
    if feeds:
        report = check_int8(args.model, result.path, feeds, args.min_agreement, args.threads)
        _say(report.summary())
        out["agreement"] = report.to_dict()
    if args.sensitivity:
        if not feeds:
            raise EasyOccError("--sensitivity needs frames to compare on (--eval-frames or --synthetic-frames)")
        from easyocc.export.sensitivity import sensitivity, table

        out["sensitivity"] = sensitivity(
            args.model, args.data, feeds, options, args.threads, log=_say, target=args.min_agreement
        )
        print(table(out["sensitivity"]), file=sys.stderr)
        keep = out["sensitivity"]["keep_to_reach_target"]["keep"]
        goal = f"to reach {100 * args.min_agreement:.2f} % agreement"
        _say(f"{goal}: " + " ".join(f"--keep {g}" for g in keep) if keep else f"{goal}: no set of groups suffices")
    _emit(out, args.json_path)
    lint.raise_for_errors()
    return 0 if out["agreement"] is None or out["agreement"]["passed"] else 1
