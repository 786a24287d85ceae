"""Synthetic problems and the vectorised LPT / ALPT simulator."""

from lptsim.sim import problems
from lptsim.sim.simulate import SCHEDULES, DivergenceError, Trace, simulate

__all__ = ["problems", "simulate", "Trace", "DivergenceError", "SCHEDULES"]
