"""lptsim: low-precision training (LPT / ALPT) of embedding tables, in theory and in CTR practice."""

__version__ = "0.1.0"
