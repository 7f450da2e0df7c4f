"""The synthetic world: procedural scenes rendered by exact ray casting into a nuScenes-layout dataset
with Occ3D ground truth. numpy and OpenCV only.

    from easyocc.training.synth import SynthConfig, SyntheticWorld, generate_dataset
    generate_dataset("data/synth", SynthConfig(scenes=2, frames=10))
    frame = SyntheticWorld(SynthConfig(), scene=0).render_frame(0)   # frame.images[channel]: RGB uint8
"""

from easyocc.training.synth.config import SynthConfig, parse_size
from easyocc.training.synth.synthetic import Frame, KeyFrame, SyntheticWorld
from easyocc.training.synth.writer import generate_dataset

__all__ = ["Frame", "KeyFrame", "SynthConfig", "SyntheticWorld", "generate_dataset", "parse_size"]
