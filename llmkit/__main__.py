"""`python -m llmkit ...`: the same command as the `llmkit` console script (handy where the script is not on PATH)."""

from llmkit.cli import main

main()
