"""Staged workflows: ``plan`` (the tasks of one run), ``run`` (on a board), ``display``."""
