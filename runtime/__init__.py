"""EasyOcc deployment runtime: the model contract (grid, classes, manifest, preprocessing), dataset
reading, backends, pipeline, postprocessing and benchmark.

Base dependencies only (numpy, OpenCV, PyYAML, ONNX Runtime); TensorRT, pycuda and torch are
imported lazily inside their backends.
"""

from runtime.classes import CLASS_NAMES, DYNAMIC_CLASSES, FREE, NUM_CLASSES, PALETTE
from runtime.errors import EasyOccError
from runtime.grid import OCC3D_NUSCENES, GridSpec
from runtime.labels import OccLabels, labels_path, read_labels, write_labels
from runtime.manifest import Manifest
from runtime.metric import OccMetric

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
