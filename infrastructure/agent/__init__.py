"""Running one execution of a coding agent: protocol, adapters, process, output, workspace."""
