"""`easyocc train --config FILE [section.key=value ...]`: train an EasyOcc model.

Under torchrun (`torchrun --nproc_per_node 2 -m easyocc.commands.train --config ...`) it trains with DDP.
"""

from __future__ import annotations

import argparse
import json

from easyocc.training.config import load_config


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="easyocc train",
        description="Train an EasyOcc model from (pseudo-)labels. Overrides are dotted keys of TrainConfig, "
        "e.g. data.root=DIR optim.iters=2000 model.backbone_width=32.",
    )
    parser.add_argument("--config", default="", help="YAML file (training/configs/*.yaml)")
    parser.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("overrides", nargs="*", help="section.key=value")
    args = parser.parse_args(argv)
    config = load_config(args.config or None, args.overrides)
    if args.print_config:
        print(json.dumps(config.to_dict(), indent=2))
        return 0
    from easyocc.training.trainer import train

    result = train(config, progress=not args.no_progress)
    final = result["metrics"]
    if final:
        print(f"done: step {result['step']}, held-out camera-mask mIoU {100 * final['camera']['miou']:.2f}")
    else:
        print(f"done: step {result['step']}, checkpoint {config.out_dir}/last.pt")
    return 0


if __name__ == "__main__":
    import sys

    raise SystemExit(main(sys.argv[1:]))
