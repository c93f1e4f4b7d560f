"""Training a cell on the lecture's tasks: the loop, optimisers, clipping, sensitivity, sweeps."""
