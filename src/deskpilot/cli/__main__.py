"""``python -m deskpilot.cli``."""

from deskpilot.cli import main

main()
