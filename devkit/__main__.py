"""``python -m devkit``: the same CLI as the ``dataforge`` script."""

from devkit.cli import main

main()
