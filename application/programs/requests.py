"""Request bodies of ``/api/commands`` (seed 000): frozen Structs that reject unknown fields."""

from __future__ import annotations

from typing import Annotated

from msgspec import Meta

from application.commands import Command

MAX_TIMEOUT = 3_600
Word = Annotated[str, Meta(max_length=10_000)]
# a string is split like a shell would split it (but never run by one); a list is the argv
CommandLine = (
    Annotated[str, Meta(min_length=1, max_length=10_000)]
    | Annotated[list[Word], Meta(min_length=1, max_length=1_000)]
)
EnvName = Annotated[str, Meta(min_length=1, max_length=128)]
EnvValue = Annotated[str, Meta(max_length=8_192)]


class RunProgram(Command, frozen=True):
    command: CommandLine
    # relative to the workspace root (default: the root itself); must exist there
    working_directory: Annotated[str, Meta(max_length=1_000)] | None = None
    timeout: Annotated[int, Meta(ge=1, le=MAX_TIMEOUT)] = 30
    environment: Annotated[dict[EnvName, EnvValue], Meta(max_length=100)] = {}
    # accepted for seed 000; output is always kept and read with GET .../status
    stream_output: bool = True


class CheckProgram(Command, frozen=True):
    command: CommandLine
    check_safety: bool = True
