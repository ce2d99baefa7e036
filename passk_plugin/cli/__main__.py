"""`python -m passk_plugin.cli ...`: the `passk` command through a chosen interpreter."""

import sys

from passk_plugin.cli import main

sys.exit(main())
