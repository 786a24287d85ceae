"""Bounds and predictions, one function each, registered with their kind, source and assumptions.

``STATEMENTS`` maps each function's name to its :class:`~lptsim.theory.registry.Statement`;
docs/theory.md has the derivations. Verification code calls these through this module
(``theory.name(...)``), so ``lptsim verify --power`` can replace any of them by a broken copy.
"""

from lptsim.theory.adaptive import (
    adagrad_dr_stall_updates,
    adagrad_dr_travel,
    adagrad_step_bound,
    adam_frozen_step,
    adam_step_bound,
)
from lptsim.theory.bc import bc_gap_large_spread, bc_gap_small_spread, rounding_gap_at_optimum
from lptsim.theory.chain import (
    bc_stationary_expectation,
    sgd_stationary,
    sgd_stationary_expectation,
    sr_stationary,
    sr_stationary_expectation,
    sr_transition_matrix,
    stationary_distribution,
    total_variation,
)
from lptsim.theory.dr import (
    dr_dither_excess,
    dr_escape_probability,
    dr_excess_lower_bound,
    dr_excess_upper_bound,
    dr_final_error,
    dr_noisy_excess_lower_bound,
    dr_stall_distance,
    dr_stall_time_bounds,
    dr_stalls,
)
from lptsim.theory.fewbit import few_bit_sr_bias, sr_few_bit_noiseless_floor
from lptsim.theory.lazy import (
    dr_freeze_threshold,
    lazy_adam_first_touch_factor,
    lazy_adam_peak_factor,
    lazy_adam_step_bound,
    lazy_adam_step_factor,
    lazy_effective_step,
    sgd_dr_frozen_probability,
    sparse_dr_frozen_probability,
)
from lptsim.theory.li2017 import bc_convex_bound, sr_convex_bound, sr_nonconvex_bound, sr_strongly_convex_bound
from lptsim.theory.martingale import sr_accumulated_error_bound
from lptsim.theory.optimal_step import alpt_fixed_step, alpt_step_gradient, optimal_step, sr_clipped_stationary_excess
from lptsim.theory.regimes import crossing, expected_dr_escapes, provable_advantage
from lptsim.theory.registry import STATEMENTS, Statement, statement
from lptsim.theory.sgd import expected_abs_gaussian, sgd_excess, sgd_stationary_variance
from lptsim.theory.sparse import (
    dr_sr_crossing,
    sparse_alpt_fixed_step,
    sparse_alpt_step_gradient,
    sparse_row_excess,
)
from lptsim.theory.sr import (
    frac_variance,
    sr_averaged_excess,
    sr_dither_excess,
    sr_excess_upper_bound,
    sr_meanfield_excess,
    sr_noiseless_floor,
    sr_small_update_floor,
)

__all__ = [
    "STATEMENTS", "Statement", "statement",
    "adagrad_dr_stall_updates", "adagrad_dr_travel", "adagrad_step_bound", "adam_frozen_step", "adam_step_bound",
    "alpt_fixed_step", "alpt_step_gradient", "optimal_step", "sr_clipped_stationary_excess",
    "bc_gap_large_spread", "bc_gap_small_spread", "rounding_gap_at_optimum",
    "dr_dither_excess", "dr_escape_probability", "dr_excess_lower_bound", "dr_excess_upper_bound", "dr_final_error",
    "dr_noisy_excess_lower_bound", "dr_stall_distance", "dr_stall_time_bounds", "dr_stalls",
    "dr_freeze_threshold", "lazy_adam_first_touch_factor", "lazy_adam_peak_factor", "lazy_adam_step_bound",
    "lazy_adam_step_factor", "lazy_effective_step", "sgd_dr_frozen_probability", "sparse_dr_frozen_probability",
    "dr_sr_crossing", "sparse_alpt_fixed_step", "sparse_alpt_step_gradient", "sparse_row_excess",
    "bc_convex_bound", "sr_convex_bound", "sr_nonconvex_bound", "sr_strongly_convex_bound",
    "bc_stationary_expectation", "few_bit_sr_bias", "sr_few_bit_noiseless_floor", "sr_accumulated_error_bound",
    "expected_abs_gaussian", "sgd_excess", "sgd_stationary_variance",
    "crossing", "expected_dr_escapes", "provable_advantage",
    "frac_variance", "sr_averaged_excess", "sr_dither_excess", "sr_excess_upper_bound", "sr_meanfield_excess",
    "sr_noiseless_floor", "sr_small_update_floor",
    "sgd_stationary", "sgd_stationary_expectation", "sr_stationary", "sr_stationary_expectation",
    "sr_transition_matrix", "stationary_distribution", "total_variation",
]
