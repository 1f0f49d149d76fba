"""The `skiptool` command line: one module per command (group), each a thin layer that parses
options, calls the library and prints. No work is done here that a library call could do."""
