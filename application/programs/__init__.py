"""Programs run on the host on a person's request (``/api/commands``): the policy that assesses
a program line before it runs (``policy``), the requests (``requests``), the runs recorded in the
store (``runs``) and the registry of those still running in this process (``registry``). Not to be
confused with a CQRS command: these are the host's programs."""
