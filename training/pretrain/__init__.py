"""OccFeat pretraining: lidar occupancy targets, the pretraining network and its heads, feature
teachers, the mixed (labels + lidar-only) training set, the losses, and `init.from` (docs/readme/model.md)."""
