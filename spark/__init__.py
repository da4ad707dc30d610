"""DataForge's PySpark code for AWS Glue 5.1 (and, unchanged, local Spark).

``spark.transforms``: pure ``DataFrame -> DataFrame`` steps. ``spark.jobs``: thin Glue entrypoints.
"""
