"""`python -m audioworkout` runs the CLI."""

from .cli import main

main()
