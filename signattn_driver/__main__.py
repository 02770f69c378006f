"""`python -m signattn_driver` runs the `signattn` command."""

import sys

from signattn_driver.cli import main

sys.exit(main())
