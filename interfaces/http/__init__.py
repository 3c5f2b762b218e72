"""The Starlette app: factory, routes by area, the error table."""
