"""The domain: what apps, versions, executions, logs, accounts and errors
are. Plain frozen dataclasses and typed errors, importing nothing else of
Ignite; every other layer speaks in these terms."""
