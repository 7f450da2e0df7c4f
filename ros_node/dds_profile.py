"""A Fast DDS profile for large messages: a 64 MB shared-memory segment instead of the 512 KB default.

Why: a raw 1600x900 rgb8 image is 4.3 MB and a dense occupancy PointCloud2 about 1 MB. Fast DDS
sends them between processes on one host through the writer's shared-memory segment, 512 KB by
default, in ~64 KB fragments; when the segment is full, fragments are overwritten before the reader
has them and the whole message is lost (best effort), or repaired only after a heartbeat, seconds
later, if the writer's history still holds it (reliable). Measured on scene-0916 played raw at 2 Hz:
with the default segment a best-effort reader got almost nothing and a reliable one lost 3-20 % of
the images; with this profile, none (docs/readme/ros.md).

`easyocc ros run` and `easyocc ros play` apply it to their own process unless the user has chosen a
profile (FASTRTPS_DEFAULT_PROFILES_FILE / FASTDDS_DEFAULT_PROFILES_FILE) or another RMW. The segment
belongs to the writer, so it helps what that process publishes; camera drivers in other processes
need the same profile (export FASTRTPS_DEFAULT_PROFILES_FILE=<the file this module writes>).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

SEGMENT_BYTES = 64 * 2**20
PROFILE_XML = f"""<?xml version="1.0" encoding="UTF-8"?>
<!-- EasyOcc: Fast DDS with a large shared-memory segment for camera images and occupancy clouds. -->
<profiles xmlns="http://www.eprosima.com/XMLSchemas/fastRTPS_Profiles">
  <transport_descriptors>
    <transport_descriptor>
      <transport_id>easyocc_shm</transport_id>
      <type>SHM</type>
      <segment_size>{SEGMENT_BYTES}</segment_size>
    </transport_descriptor>
    <transport_descriptor>
      <transport_id>easyocc_udp</transport_id>
      <type>UDPv4</type>
    </transport_descriptor>
  </transport_descriptors>
  <participant profile_name="easyocc_large_data" is_default_profile="true">
    <rtps>
      <userTransports>
        <transport_id>easyocc_shm</transport_id>
        <transport_id>easyocc_udp</transport_id>
      </userTransports>
      <useBuiltinTransports>false</useBuiltinTransports>
    </rtps>
  </participant>
</profiles>
"""
PROFILE_VARIABLES = ("FASTRTPS_DEFAULT_PROFILES_FILE", "FASTDDS_DEFAULT_PROFILES_FILE")


def profile_path() -> Path:
    """Write the profile once (atomically) into the temp folder and return its path."""
    path = Path(tempfile.gettempdir()) / f"easyocc_fastdds_large_data_{os.getuid()}.xml"
    if not path.is_file() or path.read_text() != PROFILE_XML:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".easyocc_fastdds.", suffix=".tmp")
        with os.fdopen(fd, "w") as handle:
            handle.write(PROFILE_XML)
        os.replace(tmp, path)
    return path


def apply_large_data_profile(environ=os.environ) -> Path | None:
    """Point Fast DDS at the profile unless the user chose a profile or another RMW; the path or None.

    Must run before rclpy.init (Fast DDS reads the variable when the participant is created).
    """
    if environ.get("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp") != "rmw_fastrtps_cpp":
        return None
    if any(environ.get(name) for name in PROFILE_VARIABLES):
        return None
    path = profile_path()
    environ["FASTRTPS_DEFAULT_PROFILES_FILE"] = str(path)
    return path
