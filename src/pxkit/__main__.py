"""`python -m pxkit`: the `pxkit` command line."""

from .cli import main

raise SystemExit(main())
