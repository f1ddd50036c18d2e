"""The scheduler's entry point: ``python scheduler.py`` is ``veille schedule`` (same options).

Crawls every enabled source of the config folder (``VEILLE_CONFIG``) on its schedule until
SIGTERM or Ctrl-C; see ``veille/ops/scheduling.py``.
"""

import sys

from veille.cli import main

if __name__ == "__main__":
    sys.argv[1:1] = ["schedule"]
    main()
