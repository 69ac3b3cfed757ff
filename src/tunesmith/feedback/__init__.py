"""Collecting human preferences: `tunesmith feedback`."""
