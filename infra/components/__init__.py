"""One ComponentResource per concern; each module holds its ``XxxArgs`` and its component."""
