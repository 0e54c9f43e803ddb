"""``python -m chat_client``."""

from chat_client.repl import main

raise SystemExit(main())
