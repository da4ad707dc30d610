"""Thin Glue job entrypoints: resolve arguments, read, transform (``spark.transforms``), write, commit."""
