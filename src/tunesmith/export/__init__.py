"""Export: merge a run's result into a standard model folder."""
