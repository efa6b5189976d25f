"""`python -m mediaindex.cli`, as the tests and the reliability harness start the server."""

import sys

from mediaindex.cli.app import main

sys.exit(main())
