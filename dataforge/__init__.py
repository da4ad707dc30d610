"""DataForge shared core: contract, lake layout, settings, local platform and CLI.

Importable by every runtime (Lambda, Glue, Chalice, Panel): no pyspark, pulumi or panel imports at
module level anywhere in this package.
"""

__version__ = "0.1.0"
