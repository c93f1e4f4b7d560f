"""Numeric layer: a layer of any size through BLAS (``layer``), grids of settings through
elementwise kernels (``unroll``, ``native``), weights and inputs from files, checks and studies."""
