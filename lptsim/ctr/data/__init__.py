"""CTR data: raw Criteo/Avazu/CSV readers, preparation into id arrays, the synthetic generator."""
