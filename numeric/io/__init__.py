"""Files in and out: weights (ours or PyTorch's), inputs, arrays, atomic writes."""
