from copilot_cli_proxy.cli import main

raise SystemExit(main())
