"""`python -m mediaindex.cli`, as the tests and the reliability harness start the server."""

import sys

from mediaindex.cli.app import main

if __name__ == "__main__":  # importing the module (a layer's import check walks every one) runs nothing
    sys.exit(main())
