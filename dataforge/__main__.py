"""``python -m dataforge``: the same CLI as the ``dataforge`` script."""

from dataforge.cli import main

main()
