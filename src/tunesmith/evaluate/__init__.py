"""Evaluation: loss/perplexity (in the loop) and sample answers."""
