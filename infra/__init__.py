"""DataForge infrastructure: the Pulumi program (``program.main``), typed stack settings, one
ComponentResource per concern (``components/``), the offline plan/diff engine (``render``) and the
policy rules (``policy``). Runtime code never imports this package."""
