"""The ``unetseg`` command line: argument parsing and the commands, each calling the layers below.

The top of core: nothing in core imports it."""
