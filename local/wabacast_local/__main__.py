"""Entry point of `make run`: `python -m wabacast_local --port 3000`."""

from wabacast_local.cli import main

raise SystemExit(main())
