"""Symbolic layer: cells, unrolled graphs, Jacobians and BPTT through time (SymPy only)."""
