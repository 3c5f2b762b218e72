"""Runs one command of ``/api/commands``: never through a shell, inside the workspace root, with a
minimal environment, a bounded output and its own process group.

- argv is given, or a string split like a shell would split it (``shlex``), and executed directly;
- the working directory is relative to the workspace root and must exist there: no ``..``, and
  the real path (symlinks followed) must stay inside the root;
- the environment is ``PATH``, ``HOME`` and ``LANG`` from the server, plus the request's variables
  whose names match ``^[A-Z_][A-Z0-9_]*$``, look like no secret, and change no loader or
  interpreter (``LD_PRELOAD``, ``BASH_ENV``, ``PYTHONPATH`` ... would run code the policy never
  saw); any other name refuses the request (422), values are never recorded;
- at most ``cap`` bytes of output are kept (stdout and stderr together), then a marker; the rest
  is read and dropped so the program never blocks on a full pipe;
- the program leads a new session (its own process group): stopping it signals the whole group,
  TERM and then KILL after a grace period, and whatever of the group is left when the program
  itself exits is killed too, so no background child outlives its command.
"""

from __future__ import annotations

import asyncio
import codecs
import os
import re
import signal
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from application.limits import storable
from domain.errors import RuleViolationError
from domain.values import rfc3339

DEFAULT_OUTPUT_CAP = 1_048_576
READ_SIZE = 65_536
DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"
NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")
SECRET_WORDS = frozenset(
    {"KEY", "KEYS", "PASS", "PWD", "AUTH", "COOKIE", "SESSION", "CERT", "DSN", "CREDS", "SALT"}
)
SECRET_PARTS = ("SECRET", "TOKEN", "PASS", "APIKEY", "PRIVATE", "CREDENTIAL")
RESERVED = frozenset(
    {
        "PATH",
        "HOME",
        "IFS",
        "ENV",
        "BASH_ENV",
        "SHELLOPTS",
        "BASHOPTS",
        "PROMPT_COMMAND",
        "PYTHONPATH",
        "PYTHONHOME",
        "PYTHONSTARTUP",
        "PYTHONINSPECT",
        "NODE_OPTIONS",
        "NODE_PATH",
        "PERL5OPT",
        "PERL5LIB",
        "RUBYOPT",
        "RUBYLIB",
        "GIT_SSH_COMMAND",
        "GIT_EXEC_PATH",
        "GIT_CONFIG_GLOBAL",
        "GIT_CONFIG_SYSTEM",
        "DATABASE_URL",
    }
)
RESERVED_PREFIXES = ("LD_", "DYLD_", "TASKWARDEN_", "BASH_FUNC_", "GIT_CONFIG_")
POLL = 0.05  # seconds between looks at whether a program has exited
MERGE_WITHIN = 0.1  # seconds: reads of one stream this close together make one chunk
MERGE_UP_TO = 16_384  # characters


def refused_name(name: str) -> bool:
    """Not a plain name, a secret-like one, or one that would change what code runs."""
    if not NAME.match(name) or name in RESERVED or name.startswith(RESERVED_PREFIXES):
        return True
    words = set(name.split("_"))
    return bool(words & SECRET_WORDS) or any(part in name for part in SECRET_PARTS)


def environment(
    requested: Mapping[str, str], server: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The minimal base plus the requested variables; any refused name refuses them all."""
    refused = sorted(n for n in requested if refused_name(n))
    if refused:
        raise RuleViolationError(
            "environment variables refused: names must match ^[A-Z_][A-Z0-9_]*$ and may not look "
            "like secrets or change the loader, PATH, HOME or an interpreter",
            field="environment",
            names=refused,
        )
    if any("\x00" in value for value in requested.values()):
        raise RuleViolationError("environment values may not contain NUL", field="environment")
    server = os.environ if server is None else server
    base = {
        "PATH": server.get("PATH") or DEFAULT_PATH,
        "HOME": server.get("HOME") or "/",
        "LANG": server.get("LANG") or "C.UTF-8",
    }
    return {**base, **requested}


def working_directory(root: Path, requested: str | None) -> tuple[Path, str]:
    """The real directory to run in and its path relative to the root; 422 outside the root."""
    root.mkdir(parents=True, exist_ok=True)
    real_root = root.resolve(strict=True)
    wanted = (requested or ".").strip() or "."
    if "\x00" in wanted or ".." in Path(wanted).parts:
        raise RuleViolationError(
            "working_directory may not contain '..'", field="working_directory"
        )
    try:
        real = (real_root / wanted).resolve(strict=True)
    except (FileNotFoundError, NotADirectoryError):
        raise RuleViolationError(
            "working_directory does not exist in the workspace root", field="working_directory"
        ) from None
    except (OSError, RuntimeError):  # a symlink loop, a name too long
        raise RuleViolationError(
            "working_directory cannot be resolved", field="working_directory"
        ) from None
    if not real.is_relative_to(real_root):
        raise RuleViolationError(
            "working_directory is outside the workspace root", field="working_directory"
        )
    if not real.is_dir():
        raise RuleViolationError("working_directory is not a directory", field="working_directory")
    return real, str(real.relative_to(real_root))


@dataclass(frozen=True)
class Prepared:
    argv: list[str]
    cwd: Path
    relative: str  # the working directory as recorded: relative to the workspace root
    env: dict[str, str]

    @property
    def env_names(self) -> list[str]:
        return sorted(n for n in self.env if n not in ("PATH", "HOME", "LANG"))


def prepare(
    root: Path, argv: list[str], requested_directory: str | None, requested: Mapping[str, str]
) -> Prepared:
    if not argv or not argv[0]:
        raise RuleViolationError("the command is empty", field="command")
    if any("\x00" in word for word in argv):
        raise RuleViolationError("the command may not contain NUL", field="command")
    cwd, relative = working_directory(root, requested_directory)
    return Prepared(argv=argv, cwd=cwd, relative=relative, env=environment(requested))


@dataclass
class Output:
    """What a program wrote, up to ``cap`` bytes, as timed chunks of one stream each."""

    cap: int = DEFAULT_OUTPUT_CAP
    output_bytes: int = 0  # everything the program wrote, kept or not
    truncated: bool = False
    _kept: int = 0
    _chunks: list[tuple[datetime, str, list[str]]] = field(default_factory=list)
    _decoders: dict[str, Any] = field(default_factory=dict)

    def add(self, stream: str, data: bytes, at: datetime | None = None) -> None:
        self.output_bytes += len(data)
        if self.truncated:
            return
        room = self.cap - self._kept
        kept = data[:room]
        self._kept += len(kept)
        self._append(stream, self._decoder(stream).decode(kept), at or datetime.now(UTC))
        if len(data) > room:
            self.truncated = True
            rest = self._decoder(stream).decode(b"", final=True)
            marker = f"{rest}\n[output truncated: over {self.cap} bytes]\n"
            self._chunks.append((datetime.now(UTC), stream, [marker]))

    def close(self) -> None:
        """The streams ended: a character cut at the very end becomes U+FFFD."""
        for stream, decoder in self._decoders.items():
            if not self.truncated:
                self._append(stream, decoder.decode(b"", final=True), datetime.now(UTC))

    def _decoder(self, stream: str) -> Any:
        if stream not in self._decoders:
            self._decoders[stream] = codecs.getincrementaldecoder("utf-8")(errors="replace")
        return self._decoders[stream]

    def _append(self, stream: str, text: str, at: datetime) -> None:
        if not text:
            return
        text = storable(text)  # no NUL: no Postgres text column holds one
        if self._chunks:
            last_at, last_stream, parts = self._chunks[-1]
            size = sum(len(p) for p in parts)
            close = (at - last_at).total_seconds() < MERGE_WITHIN
            if last_stream == stream and close and size + len(text) <= MERGE_UP_TO:
                parts.append(text)
                return
        self._chunks.append((at, stream, [text]))

    def chunks(self) -> list[dict[str, str]]:
        return [
            {"timestamp": rfc3339(at) or "", "stream": stream, "content": "".join(parts)}
            for at, stream, parts in self._chunks
        ]


class Program:
    """One started command, leader of its own process group."""

    def __init__(self, process: asyncio.subprocess.Process, output: Output) -> None:
        self._process = process
        self.pid = process.pid
        self.output = output
        self._pumps = [
            asyncio.ensure_future(self._pump(process.stdout, "stdout")),
            asyncio.ensure_future(self._pump(process.stderr, "stderr")),
        ]
        self._exit = asyncio.ensure_future(process.wait())  # done once the pipes close too

    @classmethod
    async def start(cls, prepared: Prepared, cap: int = DEFAULT_OUTPUT_CAP) -> Program:
        try:
            process = await asyncio.create_subprocess_exec(
                *prepared.argv,
                cwd=prepared.cwd,
                env=prepared.env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                start_new_session=True,
            )
        except OSError as error:  # not found, not executable, ...
            raise RuleViolationError(
                f"cannot start {prepared.argv[0]!r}: {error.strerror or error}", field="command"
            ) from None
        return cls(process, Output(cap))

    async def _pump(self, stream: asyncio.StreamReader | None, name: str) -> None:
        if stream is None:
            return
        while data := await stream.read(READ_SIZE):
            self.output.add(name, data)

    @property
    def returncode(self) -> int | None:
        return self._process.returncode

    def chunks(self) -> list[dict[str, str]]:
        return self.output.chunks()

    async def wait(self, timeout: float) -> bool:
        """True once the program itself has exited (children of it may still hold its pipes:
        ``asyncio``'s own ``wait`` waits for those too); False if it still runs after
        ``timeout`` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self._process.returncode is None:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            await asyncio.wait({self._exit}, timeout=min(remaining, POLL))
        return True

    async def stop(self, grace: float) -> int:
        """TERM to the whole group, KILL if the program still runs after ``grace`` seconds."""
        self._signal(signal.SIGTERM)
        if not await self.wait(grace):
            self._signal(signal.SIGKILL)
            await self.wait(grace + 5)
        return self._process.returncode if self._process.returncode is not None else -9

    async def finish(self, drain: float = 2.0) -> None:
        """After the program exited: kills what is left of its group, reads the rest of the
        output (for at most ``drain`` seconds), closes the pipes."""
        self._signal(signal.SIGKILL)
        _, pending = await asyncio.wait(self._pumps, timeout=drain)
        for pump in pending:
            pump.cancel()
        self.output.close()
        self._close()

    def abandon(self) -> None:
        """At once, without waiting (the server is stopping, or the run could not be
        recorded): KILL to the group, and the pipes closed without reading the rest."""
        self._signal(signal.SIGKILL)
        for pump in self._pumps:
            pump.cancel()
        self._close()

    def _close(self) -> None:
        self._exit.cancel()
        transport = getattr(self._process, "_transport", None)  # asyncio keeps it private
        if transport is not None:
            transport.close()

    def _signal(self, sig: signal.Signals) -> None:
        try:
            os.killpg(self.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass  # the group is gone already
