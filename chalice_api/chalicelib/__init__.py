"""Logic of the DataForge analytics API; ``app.py`` only parses, calls into here and formats."""
