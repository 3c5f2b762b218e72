"""The ledger Application, commands, one handler per command, and the ports."""
