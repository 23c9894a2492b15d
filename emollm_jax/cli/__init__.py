"""``emollm``, the one command: a subcommand per job (``main.py`` holds the table)."""
