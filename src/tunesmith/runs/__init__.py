"""The run folder: the contract between training and every reader."""
