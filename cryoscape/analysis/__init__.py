"""Analysis: metrics against ground truth (FSC, poses, clustering) and plots."""

from cryoscape.analysis.clustering_metrics import adjusted_rand_index, confusion_matrix
from cryoscape.analysis.fsc import auto_mask, per_image_fsc, plot_fsc
from cryoscape.analysis.pose_metrics import PoseError, align_rotations, geodesic_angle_deg, pose_error
from cryoscape.imaging.fsc import FSCCurve, fsc

__all__ = [
    "FSCCurve",
    "PoseError",
    "adjusted_rand_index",
    "align_rotations",
    "auto_mask",
    "confusion_matrix",
    "fsc",
    "geodesic_angle_deg",
    "per_image_fsc",
    "plot_fsc",
    "pose_error",
]
