"""`python -m zdmigrate` runs the CLI."""

from zdmigrate._entry import main

main()
