"""``taskwarden serve --workers N`` with N > 1: one listening socket, N uvicorn processes.

This process binds the address once and starts N children (``spawn``: nothing of this process's
state is copied), each serving the app on the inherited socket, the kernel handing each new
connection to one of them. Child 0 runs what the environment configures; the others are API-only
(``interfaces/bootstrap/replicas.py``). uvicorn's own ``workers=`` cannot be used for this: every
process it starts runs the same factory, with no way to tell the first from the others.

SIGTERM or SIGINT here stops every child with SIGTERM (each drains its requests and stops its
role in order), then returns 0. A child that exits by itself stops the others and the command
exits 1: run it under a service manager that restarts it.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import socket
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess
from types import FrameType

from infrastructure.settings import Settings
from interfaces.bootstrap.replicas import replica_settings

log = logging.getLogger("taskwarden.serve")
STOP_SECONDS = 40.0  # a child drains and stops its role in this long, else it is killed


def serve_processes(settings: Settings, host: str, port: int, workers: int) -> int:
    import uvicorn  # noqa: PLC0415

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    listening = uvicorn.Config(app="unused:app", host=host, port=port).bind_socket()
    context = multiprocessing.get_context("spawn")
    children: list[BaseProcess] = []
    wake_read, wake_write = socket.socketpair()
    wake_write.setblocking(False)
    stopping: list[int] = []

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stopping.append(signum)

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    signal.set_wakeup_fd(wake_write.fileno())
    try:
        for index in range(workers):
            child = context.Process(
                target=_child,
                args=(settings, index, listening),
                name=f"taskwarden-api-{index}",
            )
            child.start()
            children.append(child)
        print(f"serving on http://{host}:{port} with {workers} processes", flush=True)
        while not stopping:
            ended = wait([wake_read, *(c.sentinel for c in children)])
            dead = [c for c in children if c.sentinel in ended]
            if dead and not stopping:  # by its sentinel: is_alive() may not see it gone yet
                dead[0].join(STOP_SECONDS)
                log.error("%s exited (%s): stopping", dead[0].name, dead[0].exitcode)
                _stop(children)
                return 1
            _drain(wake_read)
        _stop(children)
        return 0
    finally:
        signal.set_wakeup_fd(-1)
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        wake_read.close()
        wake_write.close()
        listening.close()


def _child(settings: Settings, index: int, listening: socket.socket) -> None:
    """One API process on the shared socket (in a spawned interpreter)."""
    import uvicorn  # noqa: PLC0415

    from interfaces.http.app import create_app  # noqa: PLC0415
    from interfaces.http.server import server_options  # noqa: PLC0415

    own = replica_settings(settings, index)
    app = create_app(own, migrate_first=False, bootstrap=index == 0, settle=True)
    config = uvicorn.Config(app, log_level="info", **server_options(own))
    uvicorn.Server(config).run(sockets=[listening])


def _stop(children: list[BaseProcess]) -> None:
    for child in children:
        if child.is_alive() and child.pid is not None:
            child.terminate()  # SIGTERM: uvicorn drains, the lifespan stops the role
    for child in children:
        child.join(STOP_SECONDS)
        if child.is_alive():
            log.warning("%s did not stop in %g s: killed", child.name, STOP_SECONDS)
            child.kill()
            child.join()


def _drain(wake: socket.socket) -> None:
    wake.setblocking(False)
    try:
        while wake.recv(64):
            pass
    except BlockingIOError:
        pass
