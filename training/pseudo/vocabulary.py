"""The open-vocabulary prompt list: text prompts -> Occ3D classes, with detection thresholds.

File format (YAML, see training/data/vocabulary.yaml):
    box_threshold: 0.3        # minimum box score (max token probability of a query)
    text_threshold: 0.25      # minimum probability of the matched prompt's tokens
    background: others        # class of pixels no mask covers
    prompts:
      - {prompt: sedan, class: car}
      - {prompt: sky, class: free}            # 'free' marks sky: those pixels are dropped
      - {prompt: cone, class: traffic_cone, box_threshold: 0.25}
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml
from easyocc.runtime.contract.classes import CLASS_ID, CLASS_NAMES
from easyocc.runtime.contract.errors import EasyOccError

DEFAULT_VOCABULARY = Path(__file__).resolve().parents[1] / "data" / "vocabulary.yaml"


@dataclass(frozen=True)
class Prompt:
    text: str
    class_id: int
    box_threshold: float
    text_threshold: float


@dataclass(frozen=True)
class Vocabulary:
    prompts: tuple[Prompt, ...]
    background: int

    @property
    def caption(self) -> str:
        """The GroundingDINO text: prompts joined by ' . ', ending with ' .'."""
        return " . ".join(p.text for p in self.prompts) + " ."


def load_vocabulary(path=None) -> Vocabulary:
    """Read and validate a vocabulary file (default: training/data/vocabulary.yaml)."""
    path = Path(path) if path is not None else DEFAULT_VOCABULARY
    if not path.is_file():
        raise EasyOccError(f"vocabulary file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise EasyOccError(f"vocabulary {path}: invalid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(data, dict) or not isinstance(data.get("prompts"), list) or not data["prompts"]:
        raise EasyOccError(f"vocabulary {path}: expected a mapping with a non-empty 'prompts' list")
    box_default = _threshold(data.get("box_threshold", 0.3), path, "box_threshold")
    text_default = _threshold(data.get("text_threshold", 0.25), path, "text_threshold")
    prompts, seen = [], set()
    for number, entry in enumerate(data["prompts"], 1):
        if not isinstance(entry, dict) or "prompt" not in entry or "class" not in entry:
            raise EasyOccError(f"vocabulary {path}: entry {number} needs 'prompt' and 'class'")
        text, name = str(entry["prompt"]).strip().lower(), str(entry["class"])
        if name not in CLASS_ID:
            raise EasyOccError(
                f"vocabulary {path}: prompt '{text}' maps to unknown class '{name}' (known: {', '.join(CLASS_NAMES)})"
            )
        if not text or "." in text or text in seen:
            raise EasyOccError(f"vocabulary {path}: prompt '{text}' is empty, contains '.', or is repeated")
        seen.add(text)
        prompts.append(
            Prompt(
                text,
                CLASS_ID[name],
                _threshold(entry.get("box_threshold", box_default), path, f"{text}.box_threshold"),
                _threshold(entry.get("text_threshold", text_default), path, f"{text}.text_threshold"),
            )
        )
    background = str(data.get("background", "others"))
    if background not in CLASS_ID:
        raise EasyOccError(f"vocabulary {path}: background class '{background}' is unknown")
    return Vocabulary(tuple(prompts), CLASS_ID[background])


def _threshold(value, path, what: str) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise EasyOccError(f"vocabulary {path}: {what} must be a number, got {value!r}") from None
    if not 0.0 <= value <= 1.0:
        raise EasyOccError(f"vocabulary {path}: {what} must be in [0, 1], got {value}")
    return value
