"""Embedding tables for the CTR models; ``embedding_factory`` picks one by method name."""

from __future__ import annotations

from functools import partial

from lptsim.ctr.models import EmbeddingFactory, fp32_embedding

METHODS = ("fp",)


def embedding_factory(method: str, bits: int = 8, seed: int = 0, **options: object) -> EmbeddingFactory:
    """An ``EmbeddingFactory`` for ``method``."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    return partial(fp32_embedding)
