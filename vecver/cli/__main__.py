"""``python -m vecver.cli``."""

from . import main

raise SystemExit(main())
