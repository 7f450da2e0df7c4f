"""The torch model: contract shapes, view-transform sampling, checkpoints, manifest, FLOPs budget."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from easyocc.calibration import build_view_transform, default_rig  # noqa: E402
from easyocc.runtime.contract.errors import EasyOccError  # noqa: E402
from easyocc.runtime.contract.manifest import Manifest  # noqa: E402
from easyocc.runtime.contract.view_feed import view_transform_feed  # noqa: E402
from easyocc.training.model import (  # noqa: E402
    ModelConfig,
    build_model,
    load_checkpoint,
    manifest_for,
    sample_cells,
    save_checkpoint,
)
from easyocc.training.model.backbone import ResNet, load_pretrained  # noqa: E402

from easyocc.testing import tiny_model_config as tiny  # noqa: E402  (the one tiny model config)


def inputs(config: ModelConfig, batch: int = 1, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    width, height = config.input_size
    cams = len(config.camera_names)
    images = torch.randint(0, 256, (batch, cams, height, width, 3), dtype=torch.uint8, generator=gen)
    rig = default_rig().resized(width, height)
    tables = build_view_transform(rig, config.grid_spec.centres(config.stride_xy, config.stride_z))
    vt_uv = torch.from_numpy(tables.uv_norm)[None].repeat(batch, 1, 1, 1)
    vt_weights = torch.from_numpy(tables.weights)[None].repeat(batch, 1, 1)
    return images, vt_uv, vt_weights


@pytest.mark.parametrize("head", ["compact", "paper"])
def test_forward_shapes_follow_the_grid(head):
    config = tiny(head=head)
    model = build_model(config).eval()
    with torch.no_grad():
        logits = model(*inputs(config, batch=2))
    assert logits.shape == (2, 18, 50, 50, 4)
    assert logits.dtype == torch.float32
    assert torch.isfinite(logits).all()


def test_other_grid_and_strides_change_only_the_config():
    config = tiny(grid={"lower": [-20, -10, -1], "upper": [20, 10, 3.8], "voxel_size": 0.8}, stride_xy=5, stride_z=3)
    assert config.cell_shape == (10, 5, 2)
    with torch.no_grad():
        assert build_model(config).eval()(*inputs(config)).shape == (1, 18, 50, 25, 6)


def test_wrong_input_shape_is_named():
    config = tiny()
    images, vt_uv, vt_weights = inputs(config)
    with pytest.raises(EasyOccError, match=r"vt_uv: expected shape \[1, 6, 1250, 2\]"):
        build_model(config)(images, vt_uv[:, :, :-1], vt_weights)


def test_sample_cells_is_bilinear_and_weighted():
    # Camera c's feature map is the constant c+1 in channel 0 and a ramp along x in channel 1.
    cams, height, width = 2, 4, 8
    ramp = torch.arange(width, dtype=torch.float32).expand(height, width)
    features = torch.stack([torch.stack([torch.full((height, width), c + 1.0), ramp]) for c in range(cams)])

    # Cell 0 at the centre of pixel (x=2, y=1) in both cameras, cell 1 halfway between x=5 and 6, cell 2 outside.
    def norm(x, y):
        return [(x + 0.5) / width * 2 - 1, (y + 0.5) / height * 2 - 1]

    uv = torch.tensor([[norm(2, 1), norm(5.5, 2), [-2.0, -2.0]]] * cams)[None]
    weights = torch.tensor([[0.25, 1.0, 1.0], [0.75, 0.0, 0.0]])[None]
    out = sample_cells(features, uv, weights)
    assert out.shape == (1, 2, 3)
    np.testing.assert_allclose(out[0, 0].numpy(), [0.25 * 1 + 0.75 * 2, 1.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(out[0, 1].numpy(), [2.0, 5.5, 0.0], atol=1e-6)


def test_normalisation_happens_inside_forward():
    config = tiny()
    model = build_model(config).eval()
    images, vt_uv, vt_weights = inputs(config)
    with torch.no_grad():
        a = model(images, vt_uv, vt_weights)
        b = model(images.clone(), vt_uv, vt_weights)
    assert torch.equal(a, b)
    assert images.dtype == torch.uint8


def test_resnet_parameter_names_match_torchvision():
    names = set(ResNet("resnet50").state_dict())
    for expected in (
        "conv1.weight",
        "bn1.running_mean",
        "layer1.0.conv3.weight",
        "layer1.0.downsample.0.weight",
        "layer1.0.downsample.1.weight",
        "layer4.2.bn3.bias",
    ):
        assert expected in names
    assert sum(n.startswith("layer3.") and n.endswith("conv1.weight") for n in ResNet("resnet101").state_dict()) == 23
    # torchvision resnet18 has 11,689,512 parameters of which fc holds 513,000.
    assert sum(p.numel() for p in ResNet("resnet18").parameters()) == 11_689_512 - 513_000


def test_pretrained_backbone_loads_and_mismatch_is_named(tmp_path):
    source = ResNet("resnet18")
    state = {**source.state_dict(), "fc.weight": torch.zeros(1000, 512), "fc.bias": torch.zeros(1000)}
    torch.save(state, tmp_path / "r18.pth")
    target = ResNet("resnet18")
    load_pretrained(target, tmp_path / "r18.pth")
    assert torch.equal(target.layer3[1].conv2.weight, source.layer3[1].conv2.weight)
    with pytest.raises(EasyOccError, match=r"does not fit: 0 missing .* [1-9][0-9]* mis-shaped \(e.g. \[.bn1.bias"):
        load_pretrained(ResNet("resnet18", width=32), tmp_path / "r18.pth")


def test_checkpoint_roundtrip_and_mismatch_message(tmp_path):
    config = tiny()
    model = build_model(config).eval()
    path = tmp_path / "model.pt"
    save_checkpoint(path, model, config, step=3)
    loaded, loaded_config = load_checkpoint(path, expected=config)
    assert loaded_config == config
    batch = inputs(config)
    with torch.no_grad():
        assert torch.equal(model(*batch), loaded(*batch))
    other = dataclasses.replace(config, backbone_width=16, input_size=(160, 64))
    with pytest.raises(EasyOccError) as error:
        load_checkpoint(path, expected=other)
    message = str(error.value)
    assert "backbone_width: 8 != 16" in message and "input_size: [128, 64] != [160, 64]" in message
    assert "stride_xy" not in message


def test_checkpoint_is_loaded_with_weights_only(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("code ran",))

    torch.save({"model": {}, "config": {}, "payload": Evil()}, tmp_path / "evil.pt")
    with pytest.raises(EasyOccError, match="unreadable"):
        load_checkpoint(tmp_path / "evil.pt")


def test_manifest_matches_contract_and_feeds_the_model():
    config = tiny(camera_names=("CAM_FRONT", "CAM_BACK"))
    manifest = Manifest.from_json(manifest_for(config, training_data="synthetic", model_version="t1").to_json())
    assert manifest.view_transform.to_dict() == {"stride_xy": 2, "stride_z": 2, "min_depth_m": 0.1}
    assert manifest.input("images").shape == (2, 64, 128, 3)
    assert manifest.input("vt_uv").shape == (2, 1250, 2)
    assert [o.shape for o in manifest.outputs] == [(50, 50, 4), (50, 50, 4)]
    assert ModelConfig.from_dict(manifest.model_config) == config
    rig = default_rig()
    feed = view_transform_feed(manifest, type(rig)(rig[name] for name in config.camera_names))
    images = torch.zeros(1, 2, 64, 128, 3, dtype=torch.uint8)
    with torch.no_grad():
        out = build_model(config).eval()(
            images, torch.from_numpy(feed["vt_uv"])[None], torch.from_numpy(feed["vt_weights"])[None]
        )
    assert out.shape == (1, 18, 50, 50, 4)


def test_config_rejects_bad_values():
    with pytest.raises(EasyOccError, match="multiples of 32"):
        tiny(input_size=(100, 64))
    with pytest.raises(EasyOccError, match="not divisible by strides"):
        tiny(stride_z=3)
    with pytest.raises(EasyOccError, match="unknown head 'flash'"):
        tiny(head="flash")
    with pytest.raises(EasyOccError, match="unknown config key 'model.depth'; known under model: head, backbone"):
        ModelConfig.from_dict({"head": "compact", "depth": 3})


def test_flops_report_compact_within_budget(capsys):
    from easyocc.training.model.config import variant
    from easyocc.training.model.flops import COMPACT_BUDGET_GFLOPS, report

    from easyocc.commands.report import main

    rows = report({"compact": variant("compact"), "paper": variant("paper")})
    assert rows["compact"]["input"] == "6x256x704"
    assert rows["compact"]["gflops"] <= COMPACT_BUDGET_GFLOPS
    assert rows["paper"]["gflops"] > 3 * rows["compact"]["gflops"]
    assert main(["--variants", "compact"]) == 0
    assert "within the 51 G budget" in capsys.readouterr().out
