"""Data: files → records → chat template + loss mask → token rows → batches."""
