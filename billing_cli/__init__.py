"""The `billing` command line."""
