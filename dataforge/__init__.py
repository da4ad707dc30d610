"""DataForge runtime core: the event contract, lake layout, schemas, settings, serving keys, reference
data and errors.

Imported by every deployable (Lambda, Glue, Chalice, Panel) and shipped in the Lambda layer and the
Glue libraries; it imports nothing else of this repository and no heavy dependency (pyspark, pulumi,
panel) at module level.
"""

__version__ = "0.1.0"
