"""The command line, ``callboard``: ``main`` parses and dispatches to each command's module."""
