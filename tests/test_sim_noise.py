"""The simulator's Gaussian noise (lptsim.sim.noise): its branch-free ln / cos / sin against the math module, and
the four normals of a Philox counter against the standard normal law (moments, independence), each within 4 sigma."""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from lptsim.sim.noise import cos_sin_turn, log_positive, normals_at

# Bounds for ~25 double operations, each rounding by at most 2^-53 relative, plus the truncated series (< 1e-16):
# 25 * 1.1e-16 < 3e-15. A wrong coefficient, quadrant or exponent gives errors of 1e-4 and more.
TOL = 3e-15


@nb.njit  # not cached: numba's cache would not see a change in lptsim.sim.noise
def _worst_errors(words):
    e_log, e_trig = 0.0, 0.0
    for w in words:
        u = (float(w) + 0.5) * 2.0**-32
        e_log = max(e_log, abs(log_positive(u) - math.log(u)) / abs(math.log(u)))
        c, s = cos_sin_turn(np.uint32(w))
        theta = 2.0 * math.pi * (float(w) * 2.0**-32)
        e_trig = max(e_trig, abs(c - math.cos(theta)), abs(s - math.sin(theta)))
    return e_log, e_trig


def test_log_cos_sin_match_math():
    edges = [0, 1, 2**29 - 1, 2**29, 2**30 - 1, 2**30, 2**31 - 1, 2**31, 3 * 2**30 - 1, 3 * 2**30, 2**32 - 1]
    words = np.concatenate([np.random.default_rng(0).integers(0, 2**32, 200_000), edges]).astype(np.uint32)
    e_log, e_trig = _worst_errors(words)
    assert e_log < TOL and e_trig < TOL, (e_log, e_trig)


def test_four_normals_per_counter_are_independent_standard_normals():
    """Moments of z ~ N(0, 1): E z = 0 (sd 1), E z^2 = 1 (sd sqrt 2), E z^4 = 3 (sd sqrt 96), P(|z| > 3) = 0.0027;
    pairs of the counter's four outputs: E z_a z_b = 0 (sd 1) and E z_a^2 z_b^2 = 1 (sd sqrt 8), which fails for
    outputs sharing a radius or an angle (E z_a^2 z_b^2 = 2, or E z_a z_b = +-1). Each within 4 sd / sqrt(n)."""
    n = 1 << 20
    z = normals_at(11, np.arange(n) + (2 << 56))
    k = 4 / np.sqrt(n)
    tail = math.erfc(3 / math.sqrt(2))
    for a in range(4):
        x = z[:, a]
        assert abs(x.mean()) < k
        assert abs(np.mean(x**2) - 1) < k * np.sqrt(2)
        assert abs(np.mean(x**4) - 3) < k * np.sqrt(96)
        assert abs(np.mean(np.abs(x) > 3) - tail) < k * np.sqrt(tail * (1 - tail))
        for b in range(a + 1, 4):
            y = z[:, b]
            assert abs(np.mean(x * y)) < k, (a, b)
            assert abs(np.mean(x**2 * y**2) - 1) < k * np.sqrt(8), (a, b)
    # counters are independent too: neighbouring counters' first outputs
    assert abs(np.mean(z[1:, 0] * z[:-1, 0])) < k
