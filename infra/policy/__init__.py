"""Policy rules over rendered resources (``checks``), and the same rules as a Pulumi policy pack
(``__main__.py`` + ``PulumiPolicy.yaml``: ``pulumi preview --policy-pack infra/policy``)."""
