"""`python -m billing_cli` is the `billing` command."""

from billing_cli.main import main

main()
