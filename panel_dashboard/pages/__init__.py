# mypy: disable-error-code="no-untyped-call"
"""The dashboard's pages; each builds its Panel components once and updates them in place."""
