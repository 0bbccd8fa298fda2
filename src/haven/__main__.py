"""`python -m haven` is the `haven` command."""

from haven.cli import main

main()
