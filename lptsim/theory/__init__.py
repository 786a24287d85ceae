"""Bounds and predictions, one function each, with their assumptions and sources."""

from lptsim.theory.bounds import (
    bc_quantization_gap,
    dr_bias_floor_isotropic,
    dr_stall_distance,
    dr_stalls,
    expected_abs_gaussian,
    sgd_stationary_variance,
    sr_convex_bound,
    sr_noiseless_floor,
    sr_nonconvex_bound,
    sr_small_update_floor,
    sr_strongly_convex_bound,
)
from lptsim.theory.chain import sr_stationary, sr_transition_matrix, stationary_distribution, total_variation

__all__ = [
    "bc_quantization_gap", "dr_bias_floor_isotropic", "dr_stall_distance", "dr_stalls", "expected_abs_gaussian",
    "sgd_stationary_variance", "sr_convex_bound", "sr_noiseless_floor", "sr_nonconvex_bound",
    "sr_small_update_floor", "sr_strongly_convex_bound", "sr_stationary", "sr_transition_matrix",
    "stationary_distribution", "total_variation",
]
