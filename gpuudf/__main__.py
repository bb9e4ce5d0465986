"""``python -m gpuudf``: the same as the ``gpuudf`` command."""

import sys

from gpuudf.cli import main

sys.exit(main())
