"""`mediaindex export` and `mediaindex import`: a tenant's data moved between runtimes (the local
data dir, an AWS stack) through a runtime-neutral archive (services/transfer.py). Admin commands
like `keys create --tenant`: they open the runtime's stores themselves, no server or key needed."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mediaindex.cli.errors import EXIT_FAILED, CliError, err
from mediaindex.cli.target import load_settings

if TYPE_CHECKING:
    from mediaindex.services.transfer import TransferService

JOURNALS = "imports"  # under the data dir: what an interrupted import wrote (services/transfer.py)


@contextmanager
def _transfer(args: argparse.Namespace) -> Iterator[tuple[TransferService, Path]]:
    """The transfer service over the runtime the options pick, and the data dir; expected
    failures (a refused import, a damaged archive) become one `error:` line, exit 1."""
    from mediaindex.bootstrap import build_runtime
    from mediaindex.bootstrap.compose import transfer_service
    from mediaindex.domain.errors import MediaindexError

    settings = load_settings(args).model_copy(update={"start_workers": False})
    runtime = build_runtime(settings)
    try:
        yield transfer_service(runtime), settings.data_dir
    except MediaindexError as e:
        raise CliError(EXIT_FAILED, f"{e.code}: {' '.join(e.message.split())}") from e
    except OSError as e:  # the archive's folder or the disk, not the data: say which file
        where = f": {e.filename}" if e.filename else ""
        raise CliError(EXIT_FAILED, f"{e.strerror or e}{where}") from e
    finally:
        runtime.close()


def cmd_export(args: argparse.Namespace) -> int:
    from mediaindex.services.transfer import report_json

    with _transfer(args) as (service, _):
        report = service.export(args.tenant, Path(args.out), index_refs=args.index or [])
    if report.missing_blobs:
        err(f"warning: {len(report.missing_blobs)} file(s) the rows name were missing in the source")
    print(json.dumps(report_json(report)))
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from mediaindex.services.transfer import report_json

    with _transfer(args) as (service, data_dir):
        report = service.import_archive(
            Path(args.archive), tenant_name=args.tenant, journal_dir=data_dir / JOURNALS
        )
    print(json.dumps(report_json(report)))
    name = report.tenant.name
    err(
        f"imported into tenant {name}; search answers once each index's rebuild is done "
        f"(`mediaindex reindex INDEX --status`); make a key with `mediaindex keys create --tenant {name}`"
    )
    return 0


def register(sub: Any) -> None:
    e = sub.add_parser("export", help="write a tenant's indexes, assets and files to a runtime-neutral .tar")
    e.add_argument("out", metavar="OUT", type=Path, help="the .tar to write (must not exist)")
    e.add_argument("--tenant", required=True, help="the tenant's name (as in `keys create --tenant`)")
    e.add_argument(
        "--index", action="append", metavar="INDEX", help="an index name or id, repeatable (default: all)"
    )
    i = sub.add_parser("import", help="import an export into this runtime; search is rebuilt by its models")
    i.add_argument("archive", metavar="IN", type=Path, help="the .tar `mediaindex export` wrote")
    i.add_argument(
        "--tenant",
        default=None,
        help="the tenant to import into (default: the exported one's name; created when new)",
    )
    for p, fn in ((e, cmd_export), (i, cmd_import)):
        p.add_argument(
            "--runtime", choices=["local", "aws"], default=None, help="runtime (MEDIAINDEX_RUNTIME)"
        )
        p.set_defaults(fn=fn)
