"""`python -m zdmigrate` runs the CLI."""

from zdmigrate.cli import main

main()
