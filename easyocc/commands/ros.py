"""`easyocc ros run` (the node, without colcon) and `easyocc ros play` (a dataset as camera topics).

`node_main` is the console entry colcon installs (`ros2 run easyocc_ros easyocc_node --ros-args ...`).
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time

from easyocc.commands import options
from easyocc.ros_node import memory
from easyocc.ros_node.dds_profile import apply_large_data_profile
from easyocc.ros_node.params import PARAMETERS, check_values, parse_parameter
from easyocc.runtime.contract.errors import EasyOccError

USAGE = """usage: easyocc ros <run|play> [options]

  run    run the occupancy node (configures and activates itself); node parameters as -p name:=value
  play   publish a nuScenes-layout dataset as six camera topics at its recorded timing
"""


def add_param_option(parser: argparse.ArgumentParser, help_text: str) -> None:
    """The repeatable `-p/--param NAME:=VALUE` option (node parameters, as `ros2 run` spells them)."""
    parser.add_argument("-p", "--param", action="append", default=[], metavar="NAME:=VALUE", help=help_text)


def _parse_parameter(text: str):
    """'name:=value' -> rclpy Parameter, parsed and checked by the node's parameter table."""
    from rclpy.parameter import Parameter

    name, value = parse_parameter(text)
    return Parameter(name, value=value)


def _run_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="easyocc ros run",
        description="Run the EasyOcc occupancy node.",
        epilog="node parameters (-p NAME:=VALUE; the table in docs/readme/ros.md, or --print-config):\n"
        + "\n".join(f"  {name}: {spec.description}" for name, spec in PARAMETERS.items()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    options.add_model(parser, help="ONNX model or TensorRT engine (parameter model_path)")
    parser.add_argument("--backend", help="onnxruntime or tensorrt")
    parser.add_argument("--rig", help="rig file (parameter rig_file)")
    parser.add_argument("--transport", choices=("raw", "compressed"), help="camera image transport")
    parser.add_argument("--frame-id", help="output frame id")
    parser.add_argument("--name", default="easyocc", help="node name (default easyocc)")
    parser.add_argument("--namespace", default="", help="node namespace")
    add_param_option(parser, "any node parameter (repeatable); see docs/readme/ros.md")
    parser.add_argument(
        "--no-autostart", action="store_true", help="stay unconfigured; drive the lifecycle through its services"
    )
    parser.add_argument("--duration", type=float, default=0.0, help="exit after this many seconds (0 = until SIGINT)")
    options.add_json(parser, help="write latency percentiles and drops to this JSON file at exit")
    options.add_deprecated(parser, "--stats-json", "--json", "json")
    parser.add_argument(
        "--default-dds",
        action="store_true",
        help="keep Fast DDS defaults (no large shared-memory segment; see ros_node/dds_profile.py)",
    )
    parser.add_argument("--print-config", action="store_true", help="print the effective node parameters and exit")
    return parser


def node_parameters(args) -> dict:
    """{name: value as ROS declares it} from the flags and -p options (later -p win), checked."""
    texts = []
    for flag, name in (
        ("model", "model_path"),
        ("backend", "backend"),
        ("rig", "rig_file"),
        ("transport", "image_transport"),
        ("frame_id", "frame_id"),
    ):
        if getattr(args, flag):
            texts.append(f"{name}:={getattr(args, flag)}")
    texts.append(f"autostart:={'false' if args.no_autostart else 'true'}")
    return dict(parse_parameter(text) for text in texts + list(args.param))


def run(argv: list[str]) -> int:
    """Spin the node with a multi-threaded executor until SIGINT (or --duration); exit 0 when clean."""
    ros_args = []
    if "--ros-args" in argv:
        index = argv.index("--ros-args")
        argv, ros_args = argv[:index], argv[index:]
    args = _run_parser().parse_args(argv)
    values = node_parameters(args)  # refused here, before any process or node starts
    options.check_outputs(json=args.json)
    if args.print_config:
        return options.print_config(check_values(values))
    import rclpy
    from rclpy.executors import MultiThreadedExecutor
    from rclpy.parameter import Parameter

    from easyocc.ros_node.node import OccupancyNode

    overrides = [Parameter(name, value=value) for name, value in values.items()]

    if not args.default_dds:
        apply_large_data_profile()
    rclpy.init(args=["easyocc", *ros_args])
    node = OccupancyNode(args.name, namespace=args.namespace, parameter_overrides=overrides)
    failed = threading.Event()

    def on_failure():
        failed.set()
        rclpy.try_shutdown(context=node.context)

    node.on_autostart_failure = on_failure
    executor = MultiThreadedExecutor(num_threads=3)
    executor.add_node(node)
    code = _spin_until_done(node, executor, args.duration, args.json)
    if failed.is_set():
        raise EasyOccError("node configuration failed (see the log line above)")
    return code


def _spin_until_done(node, executor, duration_s: float, stats_path) -> int:
    import rclpy

    from easyocc.ros_node.spinning import spin_through_destroy_races

    try:
        from rclpy.executors import ExternalShutdownException
    except ImportError:  # older rclpy: SIGINT surfaces as KeyboardInterrupt only
        ExternalShutdownException = KeyboardInterrupt  # noqa: N806
    if duration_s > 0:
        timer = threading.Timer(duration_s, lambda: rclpy.try_shutdown(context=node.context))
        timer.daemon = True
        timer.start()
    try:
        spin_through_destroy_races(
            executor, lambda error: node.get_logger().debug(f"spinning on after an rclpy destroy race: {error}")
        )
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.close()
        stats = node.stats()
        if stats_path:
            from easyocc.runtime.contract.fileio import write_json_atomic

            write_json_atomic(stats_path, stats)
        if stats:
            lat = stats["latency_ms"]
            p50, p99 = (lat["node_added"][p] or float("nan") for p in ("p50", "p99"))
            print(
                f"easyocc ros: {stats['frames_published']} frames published; node added latency "
                f"p50 {p50:.1f} ms, p99 {p99:.1f} ms; drops {json.dumps(stats['drops'])}",
                file=sys.stderr,
            )
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
    print("easyocc ros: shut down cleanly", file=sys.stderr)
    return 0


NODE_USAGE = """usage: easyocc_node [-h] [--ros-args -p NAME:=VALUE ... --params-file FILE]

The EasyOcc occupancy node (what `ros2 run easyocc_ros easyocc_node` starts). It configures and
activates itself (autostart, true by default); with -p autostart:=false it waits for a lifecycle
manager. Parameters (docs/readme/ros.md has the table with types, defaults and ranges):
"""


def node_main(args=None) -> int:
    """Console entry for colcon installs: parameters come from --ros-args (-p, --params-file)."""
    argv = list(sys.argv if args is None else args)
    own = argv[1 : argv.index("--ros-args")] if "--ros-args" in argv else argv[1:]
    if "-h" in own or "--help" in own:
        print(NODE_USAGE + "\n".join(f"  {name}: {spec.description}" for name, spec in PARAMETERS.items()))
        return 0
    import rclpy
    from rclpy.executors import MultiThreadedExecutor

    from easyocc.ros_node.node import OccupancyNode

    apply_large_data_profile()
    rclpy.init(args=args if args is not None else sys.argv)
    node = OccupancyNode("easyocc")
    executor = MultiThreadedExecutor(num_threads=3)
    executor.add_node(node)
    return _spin_until_done(node, executor, 0.0, None)


def play(argv: list[str]) -> int:
    """Publish a dataset's camera images at recorded timing; exit 0 once everything is out."""
    import rclpy

    from easyocc.ros_node.player import DatasetPlayer, play_items

    parser = argparse.ArgumentParser(
        prog="easyocc ros play",
        description="Publish a nuScenes-layout dataset as camera topics at its recorded timing.",
    )
    options.add_data(parser, required=True)
    parser.add_argument("--scene", help="scene name (default: all scenes in order)")
    parser.add_argument("--compressed", action="store_true", help="publish JPEG CompressedImage instead of rgb8")
    parser.add_argument("--rate", type=float, default=1.0, help="playback speed factor (default 1.0)")
    parser.add_argument("--namespace", default="/cameras", help="topic prefix (default /cameras)")
    options.add_frames(parser, help="play only the first N key frames", default=0)
    parser.add_argument(
        "--loops", type=int, default=1, help="play the key frames this many times, stamps rising (default 1)"
    )
    options.add_deprecated(parser, "--max-frames", "--frames", "frames", type=int)
    parser.add_argument("--no-camera-info", action="store_true", help="do not publish CameraInfo")
    parser.add_argument(
        "--preload",
        action="store_true",
        help="decode every image before playing (raw: 4.3 MB of memory per 1600x900 image), so that playback"
        " spends no CPU on decoding, as a camera driver handing over raw frames",
    )
    parser.add_argument(
        "--wait-subscribers",
        type=float,
        default=0.0,
        help="wait up to this many seconds for a subscriber on every image topic",
    )
    parser.add_argument(
        "--delay",
        type=float,
        default=0.0,
        help="seconds to wait after the subscribers are there, before the first image",
    )
    parser.add_argument("--linger", type=float, default=1.0, help="seconds to stay up after the last image")
    parser.add_argument(
        "--timing-json",
        metavar="FILE",
        help="write every image's due, ready and published time (CLOCK_MONOTONIC s) to this JSON file",
    )
    parser.add_argument(
        "--default-dds",
        action="store_true",
        help="keep Fast DDS defaults (no large shared-memory segment; see ros_node/dds_profile.py)",
    )
    args = parser.parse_args(argv)
    options.check_output(args.timing_json, "--timing-json", "file")
    if not args.default_dds:
        apply_large_data_profile()
    items = play_items(args.data, args.scene, args.frames or None, args.loops)

    rclpy.init(args=["easyocc-play"])
    node = rclpy.create_node("easyocc_player")
    stop = threading.Event()
    try:
        player = DatasetPlayer(
            node, items, args.namespace, args.compressed, args.rate, not args.no_camera_info, preload=args.preload
        )
        if args.wait_subscribers > 0 and not player.wait_for_subscribers(args.wait_subscribers):
            print(
                f"easyocc ros play: no subscriber on some image topic after {args.wait_subscribers} s; playing anyway",
                file=sys.stderr,
            )
        time.sleep(max(args.delay, 0.0))
        memory.freeze_startup_objects()  # a full collection mid-playback would delay images
        start = time.monotonic()
        count = player.run(stop)
        time.sleep(max(args.linger, 0.0))
        print(f"easyocc ros play: published {count} images in {time.monotonic() - start:.1f} s", file=sys.stderr)
        if args.timing_json:
            from easyocc.runtime.contract.fileio import write_json_atomic

            write_json_atomic(args.timing_json, player.timing_dict())
    except KeyboardInterrupt:
        stop.set()
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0
    command, rest = argv[0], argv[1:]
    if command == "run":
        return run(rest)
    if command == "play":
        return play(rest)
    print(f"easyocc ros: unknown command '{command}'\n{USAGE}", file=sys.stderr)
    return 2
