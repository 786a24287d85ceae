"""The CTR half: data, models, low-precision embeddings, kernels, training, tables, distribution."""
