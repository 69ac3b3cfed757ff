"""WHAT is optimised: pure loss functions over tensors, plus thin batch → log-prob adapters."""
