"""``python -m confvault``."""

from confvault.cli import main

main()
