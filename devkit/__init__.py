"""The DataForge developer toolkit: the ``dataforge`` command line, the embedded platform (moto server,
Kafka broker, local Spark, the local API server with DuckDB standing in for Athena), the event
generator and the fakes the tests and benches share.

It imports every other layer (the core ``dataforge``, the deployables); nothing imports it, and no
artifact ships it (import-linter contracts and the artifact-content tests check both).
"""
