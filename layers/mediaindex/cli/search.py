"""`mediaindex search`: an index searched by text, as a table or as JSON."""

from __future__ import annotations

import argparse
import json

from mediaindex.cli.errors import err
from mediaindex.cli.output import hits_table, terminal_width
from mediaindex.cli.target import client_for


def cmd_search(args: argparse.Namespace) -> int:
    with client_for(args) as client:
        index = client.find_index(args.index)
        hits = client.search(index["id"], args.query, limit=args.limit)
    if args.json:
        print(json.dumps({"index": {"id": index["id"], "name": index["name"]}, "data": hits}, indent=2))
    elif not hits:
        err(f"no results for {args.query!r} in index {index['name']!r}")
    else:
        print("\n".join(hits_table(hits, width=terminal_width())))
    return 0
