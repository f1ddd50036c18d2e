"""``python -m veille.cli``: the same as the ``veille`` command."""

from veille.cli import main

main()
