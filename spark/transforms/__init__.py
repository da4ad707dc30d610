"""Pure DataFrame -> DataFrame steps of the silver and gold pipelines (no I/O here)."""
