"""`python -m analyzer` is the `chatcap` command."""

from analyzer.cli import main

main(prog_name="chatcap")
