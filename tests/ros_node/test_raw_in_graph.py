"""Raw sensor_msgs/Image at the cameras' resolution through the node, for a model that resizes inside
its graph (export --resize-in-graph): player process -> node process -> this process, over Fast DDS.

The node hands the 1600x900 rgb8 images to the runtime, which copies them into the model's input
without resizing; every frame published must equal the runtime run here on the same pixels, and
agree with the CPU-resize model (the same weights exported at network size) on >= 99.9 % of voxels.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.ros_node.test_scene import _assert_equal_to_runtime, _play_scene

pytestmark = [pytest.mark.ros, pytest.mark.slow, pytest.mark.timeout(240)]


@pytest.fixture(scope="module")
def in_graph_models(tmp_path_factory):
    """(reference, in_graph) ONNX paths of the export tests' stand-in model."""
    pytest.importorskip("torch", reason="exporting the stand-in model needs torch")
    import torch
    from easyocc.calibration import default_rig
    from easyocc.export.onnx_export import export_onnx
    from easyocc.export.wrapper import in_graph_resize_manifest

    from tests.export.standin import StandInModel, standin_manifest

    rig = default_rig()
    torch.manual_seed(0)
    model, manifest = StandInModel(len(rig)).eval(), standin_manifest(rig.names)
    folder = tmp_path_factory.mktemp("ros_in_graph")
    reference = export_onnx(model, manifest, folder / "reference.onnx").path
    in_graph = export_onnx(model, in_graph_resize_manifest(manifest, (1600, 900)), folder / "in_graph.onnx").path
    return reference, in_graph


def test_raw_camera_resolution_images_through_the_node(
    in_graph_models, nuscenes_dataset, nuscenes_root, ros_context, tmp_path
):
    from easyocc.runtime.contract.frames import CameraImage, FrameSet
    from easyocc.runtime.contract.preprocess import read_image
    from easyocc.runtime.occupancy import OccupancyRuntime

    reference, in_graph = in_graph_models
    frames = 6
    outputs, stats, log = _play_scene(
        in_graph,
        nuscenes_root,
        ros_context,
        tmp_path,
        play_args=["--frames", str(frames)],
        expect=frames,
    )
    assert stats["drops"] == {}, log[-3000:]
    assert len(outputs["points"]) == frames, log[-3000:]
    samples = nuscenes_dataset.samples()[:frames]
    _assert_equal_to_runtime(in_graph, samples, outputs, lambda frame: {"image": read_image(frame.path)})
    # and the in-graph resize agrees with the CPU resize of the same raw pixels
    with OccupancyRuntime(reference, threads=1) as cpu, OccupancyRuntime(in_graph, threads=1) as graph:
        for index, sample in enumerate(samples):
            images = [CameraImage(name, f.timestamp_us, image=read_image(f.path)) for name, f in sample.cameras.items()]
            frame = FrameSet.from_images(images, seq=index)
            agreement = np.mean(cpu.process(frame).semantics == graph.process(frame).semantics)
            assert agreement >= 0.999, f"frame {index}: {agreement:.5f}"
