"""3-D pseudo-labels: per-pixel semantics and metric depth from providers, lifted to 3-D, merged over
cameras and time, voxelized with visibility into the Occ3D labels layout.

Importing this package imports numpy only; torch, scipy and transformers load inside the code that
needs them.
"""
