"""Grounded-SAM through Hugging Face transformers: GroundingDINO boxes for the vocabulary's prompts,
SAM masks inside the boxes, overlaps resolved by score. Models load from local folders only.

Box decoding is done here rather than by the processor's post-processing (whose signature changes
between transformers versions): each query's box score is its highest token probability, its
prompt is the vocabulary entry whose tokens score highest, and it is kept when both pass that
entry's box and text thresholds.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from easyocc.runtime.contract.errors import EasyOccError
from easyocc.training.pseudo.providers import ImageView, Segmentation, Segmenter
from easyocc.training.pseudo.vocabulary import Vocabulary, load_vocabulary


@dataclass(frozen=True)
class Detections:
    """boxes_xyxy float32 [N, 4] pixels; scores float32 [N]; prompt int [N] index into the vocabulary."""

    boxes_xyxy: np.ndarray
    scores: np.ndarray
    prompt: np.ndarray


def prompt_token_spans(tokenizer, vocabulary: Vocabulary) -> tuple[list[int], list[tuple[int, int]]]:
    """Token ids of the caption ([CLS] p1 . p2 . ... [SEP]) and each prompt's [start, end) span."""
    ids, spans = [tokenizer.cls_token_id], []
    dot = tokenizer.convert_tokens_to_ids(".")
    for prompt in vocabulary.prompts:
        pieces = tokenizer(prompt.text, add_special_tokens=False)["input_ids"]
        spans.append((len(ids), len(ids) + len(pieces)))
        ids += pieces + [dot]
    return ids + [tokenizer.sep_token_id], spans


def select_boxes(probs: np.ndarray, boxes_cxcywh: np.ndarray, spans, vocabulary: Vocabulary, size_hw) -> Detections:
    """Thresholded detections from GroundingDINO outputs of one image.

    probs: float [Q, T] sigmoid token probabilities; boxes_cxcywh: [Q, 4] normalised to the image;
    spans: per-prompt token [start, end); size_hw: (H, W) pixels of the original image.
    """
    per_prompt = np.stack([probs[:, a:b].max(axis=1) for a, b in spans], axis=1)  # [Q, P]
    best = per_prompt.argmax(axis=1)
    text_score = per_prompt[np.arange(len(best)), best]
    box_score = probs[:, spans[0][0] : spans[-1][1]].max(axis=1)
    box_min = np.array([p.box_threshold for p in vocabulary.prompts])[best]
    text_min = np.array([p.text_threshold for p in vocabulary.prompts])[best]
    keep = (box_score > box_min) & (text_score > text_min)
    height, width = size_hw
    cx, cy, w, h = boxes_cxcywh[keep].T
    boxes = np.stack([(cx - w / 2) * width, (cy - h / 2) * height, (cx + w / 2) * width, (cy + h / 2) * height], axis=1)
    boxes = np.clip(boxes, 0, [width - 1, height - 1, width - 1, height - 1]).astype(np.float32)
    return Detections(boxes.reshape(-1, 4), box_score[keep].astype(np.float32), best[keep])


def paint_masks(masks: np.ndarray, scores: np.ndarray, classes: np.ndarray, background: int, size_hw) -> Segmentation:
    """Per-pixel class of the highest-scoring mask covering it. masks: bool [N, H, W]; scores, classes: [N]."""
    height, width = size_hw
    out_classes = np.full((height, width), background, dtype=np.uint8)
    out_score = np.zeros((height, width), dtype=np.float32)
    for i in np.argsort(scores, kind="stable"):  # ascending: higher scores paint over lower ones
        out_classes[masks[i]] = classes[i]
        out_score[masks[i]] = scores[i]
    return Segmentation(out_classes, out_score)


class GroundedSam(Segmenter):
    """GroundingDINO + SAM segmenter. `detector_dir` and `sam_dir` hold `save_pretrained` folders
    (model and processor); `vocabulary` is a vocabulary YAML path (default: the packaged one)."""

    name = "grounded-sam"

    def __init__(
        self, detector, detector_processor, sam, sam_processor, vocabulary: Vocabulary, folders=(), max_boxes: int = 64
    ):
        self.detector, self.detector_processor = detector, detector_processor
        self.sam, self.sam_processor = sam, sam_processor
        self.vocabulary = vocabulary
        self.folders = tuple(str(f) for f in folders)
        self.max_boxes = int(max_boxes)
        self.caption_ids, self.spans = prompt_token_spans(detector_processor.tokenizer, vocabulary)
        max_len = getattr(detector.config, "max_text_len", 256)
        if len(self.caption_ids) > max_len:
            raise EasyOccError(f"vocabulary caption has {len(self.caption_ids)} tokens, GroundingDINO takes {max_len}")

    @classmethod
    def from_folders(cls, detector_dir, sam_dir, vocabulary_path=None, device=None) -> GroundedSam:
        from transformers import AutoProcessor, GroundingDinoForObjectDetection, SamModel, SamProcessor

        for folder in (detector_dir, sam_dir):
            if not Path(folder, "config.json").is_file():
                raise EasyOccError(f"model folder {folder} has no config.json (save_pretrained output expected)")
        device = device or _default_device()
        detector = (
            GroundingDinoForObjectDetection.from_pretrained(detector_dir, local_files_only=True).to(device).eval()
        )
        sam = SamModel.from_pretrained(sam_dir, local_files_only=True).to(device).eval()
        return cls(
            detector,
            AutoProcessor.from_pretrained(detector_dir, local_files_only=True),
            sam,
            SamProcessor.from_pretrained(sam_dir, local_files_only=True),
            load_vocabulary(vocabulary_path),
            folders=(detector_dir, sam_dir),
        )

    def options(self) -> dict:
        return {
            "folders": self.folders,
            "vocabulary": [p.__dict__ for p in self.vocabulary.prompts],
            "max_boxes": self.max_boxes,
        }

    def detect(self, image_rgb: np.ndarray) -> Detections:
        import torch

        device = next(self.detector.parameters()).device
        pixels = self.detector_processor.image_processor(images=image_rgb, return_tensors="pt")
        ids = torch.tensor([self.caption_ids], device=device)
        with torch.no_grad():
            out = self.detector(
                pixel_values=pixels["pixel_values"].to(device),
                pixel_mask=pixels["pixel_mask"].to(device) if "pixel_mask" in pixels else None,
                input_ids=ids,
                attention_mask=torch.ones_like(ids),
                token_type_ids=torch.zeros_like(ids),
            )
        probs = out.logits[0, :, : ids.shape[1]].sigmoid().float().cpu().numpy()
        boxes = out.pred_boxes[0].float().cpu().numpy()
        detections = select_boxes(probs, boxes, self.spans, self.vocabulary, image_rgb.shape[:2])
        order = np.argsort(-detections.scores, kind="stable")[: self.max_boxes]
        return Detections(detections.boxes_xyxy[order], detections.scores[order], detections.prompt[order])

    def segment(self, image_rgb: np.ndarray, view: ImageView | None = None) -> Segmentation:
        import torch

        size_hw = image_rgb.shape[:2]
        detections = self.detect(image_rgb)
        classes = np.array([self.vocabulary.prompts[i].class_id for i in detections.prompt], dtype=np.uint8)
        if not len(classes):
            return paint_masks(np.zeros((0, *size_hw), bool), np.zeros(0), classes, self.vocabulary.background, size_hw)
        device = next(self.sam.parameters()).device
        inputs = self.sam_processor(images=image_rgb, input_boxes=[detections.boxes_xyxy.tolist()], return_tensors="pt")
        with torch.no_grad():
            out = self.sam(
                pixel_values=inputs["pixel_values"].to(device),
                input_boxes=inputs["input_boxes"].to(device),
                multimask_output=False,
            )
        masks = (
            self.sam_processor.image_processor.post_process_masks(
                out.pred_masks.cpu(), inputs["original_sizes"], inputs["reshaped_input_sizes"]
            )[0][:, 0]
            .numpy()
            .astype(bool)
        )
        scores = detections.scores * out.iou_scores[0, :, 0].float().cpu().numpy().clip(0, 1)
        return paint_masks(masks, scores, classes, self.vocabulary.background, size_hw)


def _default_device() -> str:
    from easyocc.training.pseudo.metric_depth import default_device

    return default_device()  # cuda:LOCAL_RANK under torchrun
