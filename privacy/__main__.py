"""`python -m privacy ...`: the command line (see privacy/cli.py)."""
import sys

from privacy.cli import main

if __name__ == "__main__":
    sys.exit(main())
