"""`python -m mediaplane.cli`: the same as the `mediaplane` command."""

from mediaplane.cli.main import main

raise SystemExit(main())
