"""Entry points: the HTTP app, the CLI."""
