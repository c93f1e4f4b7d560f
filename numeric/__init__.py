"""Numeric layer: the symbolic cells compiled to vectorised NumPy kernels (next issue)."""
