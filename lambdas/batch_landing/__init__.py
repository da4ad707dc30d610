"""S3 batch landing processor: landed files -> bronze + quarantine."""
