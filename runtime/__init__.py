"""EasyOcc deployment runtime: the model contract (grid, classes, manifest, preprocessing), dataset
reading, backends, pipeline, postprocessing and benchmark.

Base dependencies only (numpy, OpenCV, PyYAML, ONNX Runtime); TensorRT, pycuda and torch are
imported lazily inside their backends.
"""

from easyocc.runtime.contract.classes import CLASS_NAMES, DYNAMIC_CLASSES, FREE, NUM_CLASSES, PALETTE
from easyocc.runtime.contract.errors import EasyOccError
from easyocc.runtime.contract.grid import OCC3D_NUSCENES, GridSpec
from easyocc.runtime.contract.manifest import Manifest
from easyocc.runtime.dataset.labels import OccLabels, labels_path, read_labels, write_labels
from easyocc.runtime.dataset.metric import OccMetric

__all__ = [
    "CLASS_NAMES",
    "DYNAMIC_CLASSES",
    "FREE",
    "NUM_CLASSES",
    "OCC3D_NUSCENES",
    "PALETTE",
    "EasyOccError",
    "GridSpec",
    "Manifest",
    "OccLabels",
    "OccMetric",
    "labels_path",
    "read_labels",
    "write_labels",
]
