"""The one engine: a layer (weights shared by a batch of sequences) and a grid of settings (weights
with the grid's shape in front) run the same code, built from the core's stage rules
(``derive.rules``).  Where is what:

- ``shapes``: one unrolling checked and arranged (``prepare``), and what a run may cost;
- ``stages``: the rules lambdified for NumPy; ``products``: the products W v of a layer or a grid;
- ``scan``: the forward pass; ``bptt``: the reverse pass (BPTT); ``tangent``: forward mode;
- ``grad``: ∂L/∂θ for a loss on the output (``value_and_grad``), a trainer's seed (``bptt``);
- ``jacobian``: ∂s_T/∂s_{T−k} by lag and ∂s_t/∂s_0 by step, in the log domain (``logmatrix``);
- ``modes``: which of reverse, forward and native computes a gradient; ``native``: the C backend;
- ``spectral``: σ₁ of a recurrent weight.
"""
