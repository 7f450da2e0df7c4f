"""Re-export of the project's one error type (defined in calibration, the lowest package)."""

from easyocc.calibration.errors import EasyOccError

__all__ = ["EasyOccError"]
