"""`easyocc report`: FLOPs and parameters of the model variants (easyocc/training/model/flops.py)."""

from __future__ import annotations

import argparse
import json

from easyocc.commands import options
from easyocc.runtime.contract.fileio import write_json_atomic
from easyocc.training.model import ModelConfig
from easyocc.training.model.config import variant
from easyocc.training.model.flops import COMPACT_BUDGET_GFLOPS, format_table, report
from easyocc.training.synth.config import parse_size


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="easyocc report", description=__doc__)
    parser.add_argument("--variants", default="compact,paper", help="comma-separated: compact, paper")
    parser.add_argument("--size", default="704x256", help="network input WIDTHxHEIGHT (default 704x256)")
    options.add_model(parser, help="also count this checkpoint's model (.pt)")
    options.add_deprecated(parser, "--checkpoint", "--model", "model")
    options.add_json(parser, help="write the figures to this JSON file")
    args = parser.parse_args(argv)
    options.check_outputs(json=args.json)
    width, height = parse_size(args.size)
    configs = {name: variant(name, input_size=(width, height)) for name in args.variants.split(",") if name}
    if args.model:
        from easyocc.training.model import read_checkpoint

        configs["checkpoint"] = ModelConfig.from_dict(read_checkpoint(args.model)["config"])
    rows = report(configs)
    print(format_table(rows))
    if "compact" in rows:
        verdict = "within" if rows["compact"]["gflops"] <= COMPACT_BUDGET_GFLOPS else "OVER"
        print(f"compact: {rows['compact']['gflops']:.1f} GFLOPs, {verdict} the {COMPACT_BUDGET_GFLOPS:g} G budget")
    if args.json:
        write_json_atomic(args.json, rows)
    else:
        print(json.dumps({k: {"per_module_gflops": v["per_module"]} for k, v in rows.items()}, indent=1))
    return 0
