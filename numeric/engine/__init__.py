"""The one engine: a cell's core stages run forwards (``scan``), backwards (``bptt``) and along
tangents (``tangent``), for a layer (weights shared by a batch of sequences) and a grid of
settings (weights with a leading shape) alike.  NumPy is one backend; ``native`` prints the
same stages as C."""
