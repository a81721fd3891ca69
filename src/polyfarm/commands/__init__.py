"""The subcommands of the ``polyfarm`` command line, one module per group."""
