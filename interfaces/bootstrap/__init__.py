"""One typed bootstrap per process role: each module builds a role's objects from ``Settings``
(``interfaces/services.py`` builds the parts every role shares), starts them on the role's event
loop, and stops them in one order (``shutdown.py``). docs/architecture.md, "Process roles"."""
