"""The `mediaindex` command line.

app.py builds the parser and runs a command (its docstring is `mediaindex --help`'s text); each
command group has its module (serve, ingest, search, status, keys and admin_keys, webhooks,
quotas, reindex, models, demo_cmd, aws; backup and restore live in mediaindex.backup). Beneath them:
target.py finds the server and key, errors.py holds the exit codes, output.py and settle.py
print, local_server.py guards the data dir."""

from mediaindex.cli.app import build_parser, main

__all__ = ["build_parser", "main"]
