"""``python -m dnnergy`` runs the command-line interface."""

from .cli import main

main()
