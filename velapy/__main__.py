"""`python -m velapy` runs the command line."""

from velapy.cli import main

main()
