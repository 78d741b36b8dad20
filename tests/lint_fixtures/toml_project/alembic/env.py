"""Not run: the toml fixture is linted without --env."""
