"""Foundation-model adapters with tiny randomly initialised models of the real architectures (no
downloads): Grounded-SAM (transformers), Metric3D (torch.hub from a local repo), Depth Anything."""

from __future__ import annotations

import textwrap
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from easyocc.calibration import default_rig
from easyocc.runtime.contract.classes import CLASS_ID, FREE
from easyocc.runtime.contract.errors import EasyOccError
from easyocc.training.pseudo.grounded_sam import GroundedSam, paint_masks, prompt_token_spans, select_boxes
from easyocc.training.pseudo.metric_depth import CANONICAL_FOCAL_PX, Metric3D, canonical_input, canonical_to_metric
from easyocc.training.pseudo.vocabulary import load_vocabulary

pytest.importorskip("torch")
WORDS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", "car", "sedan", "person", "sky", "road", "tree"]


def _view(width=160, height=90):
    camera = default_rig().resized(width, height)["CAM_FRONT"]
    return SimpleNamespace(camera=camera, shape=(height, width), path=Path("x.jpg"))


def _vocabulary(tmp_path, entries, **top) -> Path:
    lines = [f"{k}: {v}" for k, v in top.items()] + ["prompts:"] + [f"  - {e}" for e in entries]
    path = tmp_path / "vocabulary.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_packaged_vocabulary_maps_prompts_to_occ3d_classes():
    vocabulary = load_vocabulary()
    by_text = {p.text: p.class_id for p in vocabulary.prompts}
    assert by_text["sedan"] == CLASS_ID["car"] and by_text["sky"] == FREE and by_text["tree"] == CLASS_ID["vegetation"]
    assert vocabulary.caption.startswith("sedan . car .") and vocabulary.caption.endswith("sky .")
    # every one of the 16 Occ3D semantic classes, background included, is prompted
    assert {p.class_id for p in vocabulary.prompts} == set(range(FREE + 1))


def test_vocabulary_entry_with_unknown_class_is_named(tmp_path):
    path = _vocabulary(tmp_path, ["{prompt: car, class: car}", "{prompt: lamp, class: streetlight}"])
    with pytest.raises(EasyOccError, match="prompt 'lamp' maps to unknown class 'streetlight'"):
        load_vocabulary(path)
    with pytest.raises(EasyOccError, match="box_threshold must be in"):
        load_vocabulary(_vocabulary(tmp_path, ["{prompt: car, class: car}"], box_threshold=1.5))


def test_box_selection_applies_per_prompt_thresholds_and_mapping(tmp_path):
    vocabulary = load_vocabulary(
        _vocabulary(tmp_path, ["{prompt: car, class: car}", "{prompt: person, class: pedestrian, box_threshold: 0.6}"])
    )
    spans = [(1, 2), (3, 4)]  # [CLS] car . person . [SEP]
    probs = np.zeros((3, 6))
    probs[0, 1] = 0.5  # car at 0.5: kept (0.3 default)
    probs[1, 3] = 0.5  # person at 0.5: below its own 0.6 box threshold
    probs[2, 1], probs[2, 3] = 0.2, 0.9  # person wins the text match
    boxes = np.array([[0.5, 0.5, 0.2, 0.4]] * 3)
    detections = select_boxes(probs, boxes, spans, vocabulary, (100, 200))
    assert detections.prompt.tolist() == [0, 1]
    assert np.allclose(detections.boxes_xyxy[0], [80, 30, 120, 70])
    painted = paint_masks(
        np.array([np.ones((4, 4), bool), np.eye(4, dtype=bool)]), np.array([0.9, 0.5]), np.array([4, 7]), 0, (4, 4)
    )
    assert (painted.classes == 4).all()  # the higher score wins the overlap


def _tiny_grounded_sam(folder: Path):
    from transformers import (
        BertConfig,
        BertTokenizer,
        GroundingDinoConfig,
        GroundingDinoForObjectDetection,
        GroundingDinoImageProcessor,
        GroundingDinoProcessor,
        ResNetConfig,
        SamConfig,
        SamImageProcessor,
        SamModel,
        SamProcessor,
    )
    from transformers.models.sam.configuration_sam import SamMaskDecoderConfig, SamPromptEncoderConfig, SamVisionConfig

    (folder / "vocab.txt").write_text("\n".join(WORDS) + "\n")
    tokenizer = BertTokenizer(str(folder / "vocab.txt"))
    config = GroundingDinoConfig(
        backbone_config=ResNetConfig(embedding_size=8, hidden_sizes=[8, 16, 16, 16], depths=[1, 1, 1, 1], out_features=["stage2", "stage3", "stage4"]),
        text_config=BertConfig(vocab_size=len(WORDS), hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32),
        num_queries=20, encoder_layers=1, decoder_layers=2, d_model=32, encoder_ffn_dim=32, decoder_ffn_dim=32,
        encoder_attention_heads=2, decoder_attention_heads=2, max_text_len=32, encoder_n_points=2, decoder_n_points=2,
    )  # fmt: skip
    GroundingDinoForObjectDetection(config).save_pretrained(folder / "grounding-dino")
    GroundingDinoProcessor(
        GroundingDinoImageProcessor(size={"shortest_edge": 64, "longest_edge": 128}), tokenizer
    ).save_pretrained(folder / "grounding-dino")
    sam_config = SamConfig(
        vision_config=SamVisionConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, mlp_dim=32, output_channels=16, image_size=64, patch_size=16, window_size=2, global_attn_indexes=[0], num_pos_feats=8),
        prompt_encoder_config=SamPromptEncoderConfig(hidden_size=16, image_size=64, patch_size=16, mask_input_channels=4),
        mask_decoder_config=SamMaskDecoderConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, mlp_dim=32, iou_head_hidden_dim=16),
    )  # fmt: skip
    SamModel(sam_config).save_pretrained(folder / "sam")
    SamProcessor(SamImageProcessor(size={"longest_edge": 64}, pad_size={"height": 64, "width": 64})).save_pretrained(
        folder / "sam"
    )


def test_grounded_sam_from_local_folders_segments_with_vocabulary_classes(tmp_path):
    pytest.importorskip("transformers")
    import torch

    torch.manual_seed(0)
    _tiny_grounded_sam(tmp_path)
    vocabulary = _vocabulary(
        tmp_path,
        ["{prompt: car, class: car}", "{prompt: person, class: pedestrian}", "{prompt: sky, class: free}"],
        box_threshold=0.0,
        text_threshold=0.0,
    )
    segmenter = GroundedSam.from_folders(tmp_path / "grounding-dino", tmp_path / "sam", vocabulary, device="cpu")
    ids, spans = prompt_token_spans(segmenter.detector_processor.tokenizer, segmenter.vocabulary)
    assert ids == segmenter.detector_processor.tokenizer(segmenter.vocabulary.caption)["input_ids"]
    assert spans == [(1, 2), (3, 4), (5, 6)]
    image = np.random.default_rng(0).integers(0, 255, (90, 160, 3), dtype=np.uint8)
    result = segmenter.segment(image, _view())
    assert result.classes.shape == (90, 160) and result.score.shape == (90, 160)
    # thresholds at 0 keep every query, so masks cover pixels with the vocabulary's classes only
    assert set(np.unique(result.classes).tolist()) <= {
        CLASS_ID["car"],
        CLASS_ID["pedestrian"],
        FREE,
        CLASS_ID["others"],
    }
    assert len(set(np.unique(result.classes).tolist()) - {CLASS_ID["others"]}) >= 1
    strict = GroundedSam.from_folders(
        tmp_path / "grounding-dino",
        tmp_path / "sam",
        _vocabulary(tmp_path, ["{prompt: car, class: car}"], box_threshold=1.0),
        device="cpu",
    )
    assert (strict.segment(image, _view()).classes == CLASS_ID["others"]).all()  # nothing passes a threshold of 1


def test_metric3d_canonical_camera_maths():
    image = np.zeros((90, 160, 3), np.uint8)
    prepared = canonical_input(image, fx=1266.0, input_hw=(64, 96))
    assert prepared.image.shape == (3, 64, 96) and prepared.resized_hw == (54, 96)
    assert prepared.pad == (5, 5, 0, 0) and np.isclose(prepared.focal_px, 1266.0 * 0.6)
    canonical = np.full((64, 96), 10.0, np.float32)
    depth = canonical_to_metric(canonical, prepared, (90, 160))
    assert depth.shape == (90, 160) and np.allclose(depth, 10.0 * 1266.0 * 0.6 / CANONICAL_FOCAL_PX)


HUBCONF = '''
dependencies = ["torch"]
import torch


class Tiny(torch.nn.Module):
    """Stands in for Metric3D: canonical depth grows with the image row (so padding shows)."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 1, 1)

    def inference(self, data):
        x = data["input"]
        rows = torch.arange(x.shape[2], dtype=torch.float32)[None, None, :, None].expand(x.shape[0], 1, -1, x.shape[3])
        return rows + 5.0, torch.ones_like(rows), {}


def metric3d_vit_small(pretrain=False, **kwargs):
    return Tiny()
'''


def test_metric3d_from_local_hub_repo(tmp_path):
    import torch

    (tmp_path / "metric3d").mkdir()
    (tmp_path / "metric3d" / "hubconf.py").write_text(textwrap.dedent(HUBCONF))
    model = Metric3D(tmp_path / "metric3d", input_hw=(64, 96), device="cpu")
    torch.save({"model_state_dict": model.model.state_dict()}, tmp_path / "metric3d" / "weights.pth")
    model = Metric3D(tmp_path / "metric3d", input_hw=(64, 96), device="cpu")
    view = _view()
    depth = model.estimate(np.zeros((90, 160, 3), np.uint8), view)
    assert depth.shape == (90, 160)
    scale = view.camera.K[0, 0] * 0.6 / 1000.0
    # top image row = canonical row 5 (after 5 rows of padding) -> depth (5 + 5) * f'/1000
    assert np.isclose(depth[0].mean(), 10.0 * scale, rtol=0.05)
    with pytest.raises(EasyOccError, match="no hubconf.py"):
        Metric3D(tmp_path)


def test_depth_anything_metric_from_local_folder(tmp_path):
    pytest.importorskip("transformers")
    from easyocc.training.pseudo.metric_depth import DepthAnything
    from transformers import DepthAnythingConfig, DepthAnythingForDepthEstimation, Dinov2Config, DPTImageProcessor

    backbone = Dinov2Config(
        hidden_size=16,
        num_hidden_layers=4,
        num_attention_heads=2,
        intermediate_size=32,
        image_size=56,
        patch_size=14,
        out_features=["stage1", "stage2", "stage3", "stage4"],
        reshape_hidden_states=False,
    )
    config = DepthAnythingConfig(backbone_config=backbone, neck_hidden_sizes=[8, 8, 8, 8], fusion_hidden_size=8, head_hidden_size=8, reassemble_hidden_size=16, depth_estimation_type="metric", max_depth=80)  # fmt: skip
    DepthAnythingForDepthEstimation(config).save_pretrained(tmp_path / "depth-anything")
    DPTImageProcessor(size={"height": 56, "width": 98}, keep_aspect_ratio=False, ensure_multiple_of=14).save_pretrained(
        tmp_path / "depth-anything"
    )
    model = DepthAnything(tmp_path / "depth-anything", device="cpu")
    depth = model.estimate(np.zeros((90, 160, 3), np.uint8), _view())
    assert not model.relative and depth.shape == (90, 160) and depth.dtype == np.float32
    assert np.all((depth >= 0) & (depth <= 80))


HUBCONF_VARIANTS = (
    HUBCONF
    + """

def metric3d_vit_large(pretrain=False, **kwargs):
    model = Tiny()
    model.large = torch.nn.Linear(2, 2)
    return model
"""
)


def _metric3d_repo(tmp_path, text=HUBCONF_VARIANTS):
    repo = tmp_path / "metric3d"
    repo.mkdir(exist_ok=True)
    (repo / "hubconf.py").write_text(textwrap.dedent(text))
    return repo


def test_metric3d_weights_load_strictly_and_module_prefix_is_undone(tmp_path):
    import torch

    repo = _metric3d_repo(tmp_path)
    model = Metric3D(repo, input_hw=(64, 96), device="cpu")
    state = {f"module.{k}": torch.full_like(v, 0.5) for k, v in model.model.state_dict().items()}
    torch.save({"state_dict": state}, repo / "weights.pth")
    loaded = Metric3D(repo, input_hw=(64, 96), device="cpu")
    assert torch.all(loaded.model.conv.weight == 0.5)  # the prefixed weights really arrived
    torch.save({"conv.weight": state["module.conv.weight"], "head.weight": torch.zeros(2)}, repo / "weights.pth")
    with pytest.raises(EasyOccError) as error:
        Metric3D(repo, input_hw=(64, 96), device="cpu")
    assert str(error.value) == (
        f"Metric3D {repo / 'weights.pth'}: weights do not fit the model: 1 missing (conv.bias), 1 unexpected (head.weight)"
    )


def test_metric3d_variants_are_selectable_and_unknown_ones_named(tmp_path):
    from easyocc.training.pseudo.registry import build_depth

    repo = _metric3d_repo(tmp_path)
    large = build_depth("metric3d-vit-large", tmp_path)
    assert large.name == "metric3d-vit-large" and hasattr(large.model, "large")
    assert large.options()["model"] == "metric3d_vit_large" and build_depth("metric3d", tmp_path).name == "metric3d"
    with pytest.raises(
        EasyOccError, match="^unknown Metric3D variant 'vit-huge'; known: vit-small, vit-large, vit-giant2$"
    ):
        Metric3D(repo, variant="vit-huge")
    with pytest.raises(EasyOccError, match="cannot build 'metric3d_vit_giant2'"):
        Metric3D(repo, variant="vit-giant2")  # this clone has no giant2 entry point


def test_metric3d_missing_dependency_is_one_line(tmp_path):
    repo = _metric3d_repo(tmp_path, "from mmengine_absent_for_test import Config\n" + HUBCONF)
    with pytest.raises(EasyOccError) as error:
        Metric3D(repo, device="cpu")
    assert str(error.value) == (
        "Metric3D needs the Python package 'mmengine_absent_for_test', not installed (pip install 'easyocc[metric3d]')"
    )


def test_metric3d_batch_equals_one_at_a_time(tmp_path):
    model = Metric3D(_metric3d_repo(tmp_path), input_hw=(64, 96), device="cpu", batch=2)
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (90, 160, 3), dtype=np.uint8) for _ in range(3)]
    views = [_view(), _view(), _view()]
    batched = model.estimate_batch(images, views)
    for image, view, depth in zip(images, views, batched):
        np.testing.assert_allclose(depth, model.estimate(image, view), rtol=1e-6)


def test_device_is_cuda_local_rank_under_torchrun():
    from easyocc.training.pseudo.metric_depth import default_device

    assert default_device({"LOCAL_RANK": "3"}, cuda_available=True) == "cuda:3"
    assert default_device({}, cuda_available=True) == "cuda:0"
    assert default_device({"LOCAL_RANK": "3"}, cuda_available=False) == "cpu"


def _tiny_depth_anything(folder, kind):
    from transformers import DepthAnythingConfig, DepthAnythingForDepthEstimation, Dinov2Config, DPTImageProcessor

    backbone = Dinov2Config(hidden_size=16, num_hidden_layers=4, num_attention_heads=2, intermediate_size=32, image_size=56, patch_size=14, out_features=["stage1", "stage2", "stage3", "stage4"], reshape_hidden_states=False)  # fmt: skip
    config = DepthAnythingConfig(backbone_config=backbone, neck_hidden_sizes=[8, 8, 8, 8], fusion_hidden_size=8, head_hidden_size=8, reassemble_hidden_size=16, depth_estimation_type=kind, max_depth=80)  # fmt: skip
    DepthAnythingForDepthEstimation(config).save_pretrained(folder)
    DPTImageProcessor(size={"height": 56, "width": 98}, keep_aspect_ratio=False, ensure_multiple_of=14).save_pretrained(
        folder
    )


def test_relative_depth_anything_is_refused_without_aligned_and_batches(tmp_path):
    pytest.importorskip("transformers")
    from easyocc.training.pseudo.registry import build_depth

    _tiny_depth_anything(tmp_path / "depth-anything", "relative")
    with pytest.raises(
        EasyOccError,
        match=r"^depth 'depth-anything' is relative \(disparity up to scale and shift, not metres\); use --depth aligned-depth-anything$",
    ):
        build_depth("depth-anything", tmp_path)
    aligned = build_depth("aligned-depth-anything", tmp_path)
    assert aligned.base.relative and aligned.base.options()["kind"] == "relative"
    images = [np.full((90, 160, 3), v, np.uint8) for v in (0, 128)]
    batched = aligned.base.estimate_batch(images, [_view(), _view()])
    np.testing.assert_allclose(batched[1], aligned.base.estimate(images[1], _view()), rtol=1e-4, atol=1e-5)


def test_depth_anything_with_missing_weights_is_one_line(tmp_path):
    pytest.importorskip("transformers")
    from easyocc.training.pseudo.metric_depth import DepthAnything
    from safetensors.torch import load_file, save_file

    folder = tmp_path / "depth-anything"
    _tiny_depth_anything(folder, "metric")
    weights = load_file(folder / "model.safetensors")
    dropped = sorted(weights)[0]
    del weights[dropped]
    save_file(weights, folder / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(EasyOccError) as error:
        DepthAnything(folder, device="cpu")
    message = str(error.value)
    assert "\n" not in message and f"weights do not fit the model: 1 missing ({dropped}), 0 unexpected (-)" in message
