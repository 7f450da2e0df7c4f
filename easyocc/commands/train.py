"""`easyocc train --config FILE [section.key=value ...]`: train an EasyOcc model.

Under torchrun (`torchrun --nproc_per_node 2 -m easyocc.commands.train --config ...`) it trains with DDP.
"""

from __future__ import annotations

import argparse

from easyocc.commands import options
from easyocc.training.config import TrainConfig


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="easyocc train",
        description="Train an EasyOcc model from (pseudo-)labels. Overrides are dotted keys of TrainConfig, "
        "e.g. data.root=DIR optim.iters=2000 model.backbone_width=32.",
    )
    options.add_data(parser, help="nuScenes-layout dataset folder (config data.root)")
    options.add_out(parser, help="run folder (config out_dir)")
    options.add_quiet(parser)
    options.add_deprecated(parser, "--no-progress", "-q/--quiet", "quiet", flag=True)
    options.add_config(parser, TrainConfig)
    return parser


def main(argv: list[str]) -> int:
    args = build_parser().parse_intermixed_args(argv)
    config = options.resolve_config(TrainConfig, args, {"data.root": args.data, "out_dir": args.out})
    if args.print_config:
        return options.print_config(config)
    options.check_outputs(config.out_dir)
    from easyocc.training.trainer import train

    result = train(config, progress=not args.quiet)
    final = result["metrics"]
    if final:
        print(f"done: step {result['step']}, held-out camera-mask mIoU {final['camera']['miou']:.2f}")
    else:
        print(f"done: step {result['step']}, checkpoint {config.out_dir}/last.pt")
    return 0


if __name__ == "__main__":
    import sys

    from easyocc.cli import run_command

    raise SystemExit(run_command("train", main, sys.argv[1:]))
