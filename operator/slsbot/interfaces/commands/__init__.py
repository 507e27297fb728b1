"""One module per slsbot subcommand."""
