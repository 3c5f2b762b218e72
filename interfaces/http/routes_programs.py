"""Program endpoints (seed 000's `/api/commands`): run programs on the server. Admins only,
off by default.

With ``TASKWARDEN_COMMANDS_ENABLED`` off, every route that runs or reads runs answers 403
``COMMANDS_DISABLED``; ``/validate`` and ``/suggestions`` run nothing and always answer. The
programs run on this process's event loop, watched by the api role's ``ProgramRegistry``,
which stops them and records their end when the role stops.
"""

from __future__ import annotations

import socket

from starlette.requests import Request
from starlette.responses import Response

from application.programs import policy, runs
from application.programs.requests import CheckProgram, RunProgram
from application.programs.runs import ProgramsDisabledError
from application.results import Requested
from domain.errors import RuleViolationError
from domain.program_run import ProgramRun
from domain.values import Permission, rfc3339
from infrastructure.program_runner import Program, prepare
from interfaces.http.endpoint import Endpoint
from interfaces.http.envelope import ok
from interfaces.http.errors import written
from interfaces.http.inputs import Query, actor, body, call
from interfaces.http.role import role_of, store_of


def _enabled(request: Request) -> None:
    if not request.app.state.settings.commands_enabled:
        raise ProgramsDisabledError()


async def execute(request: Request) -> Response:
    _enabled(request)
    cmd = await body(request, RunProgram)
    by = actor(request)
    assessment = policy.validate(cmd.command)
    if not assessment.data()["valid"]:
        raise RuleViolationError(
            "the command is refused: " + "; ".join(assessment.warnings),
            field="command",
            risk_level=assessment.risk_level,
            warnings=assessment.warnings,
            suggestions=assessment.suggestions,
        )
    argv = policy.split(cmd.command)
    root = request.app.state.settings.workspaces
    prepared = await call(prepare, root, argv, cmd.working_directory, cmd.environment)
    watcher, store, host = role_of(request).programs, store_of(request), socket.gethostname()

    def record(pid: int) -> tuple[ProgramRun, int]:
        return runs.record_started(
            store,
            by,
            command=policy.display(cmd.command),
            argv=prepared.argv,
            working_directory=prepared.relative,
            timeout=cmd.timeout,
            environment=prepared.env_names,
            pid=pid,
            host=host,
        )

    run, position = await watcher.start(lambda: Program.start(prepared, watcher.output_cap), record)
    data = {
        "command_id": str(run.id),
        "id": str(run.id),
        "command": run.command,
        "status": run.status,
        "pid": run.pid,
        "working_directory": run.working_directory,
        "timeout": run.timeout,
        "started_at": rfc3339(run.started_at),
    }
    return written(request, Requested(data=data, position=position))


async def status(request: Request) -> Response:
    _enabled(request)
    Query(request, set())
    store = store_of(request)
    run = await call(
        runs.load_run, store, request.path_params["command_id"], actor(request).team_id
    )
    live = role_of(request).programs.live(run.id)
    output = live.chunks() if live else await call(runs.stored_output, store, run)
    return ok(request, runs.status_data(run, output, live, store.clock.now()))


async def cancel(request: Request) -> Response:
    """Stops the program (its whole process group) and answers once its end is recorded; a run
    started by another API process is stopped by that process within a second or so."""
    _enabled(request)
    Query(request, set())
    by, store = actor(request), store_of(request)
    run = await call(runs.request_cancel, store, request.path_params["command_id"], by)
    await role_of(request).programs.cancel(run.id)
    run = await call(runs.load_run, store, str(run.id), by.team_id)
    data = runs.run_data(run, store.clock.now())
    data["cancelled_at"] = rfc3339(run.cancelled_at)
    return ok(request, data)


async def running(request: Request) -> Response:
    _enabled(request)
    Query(request, set())
    data = await call(runs.running_data, store_of(request), actor(request).team_id)
    return ok(request, data)


async def history(request: Request) -> Response:
    _enabled(request)
    page, size = Query(request, {"page", "page_size", "limit", "offset"}).paging()
    data = await call(runs.history_data, store_of(request), actor(request).team_id, page, size)
    data.update(limit=size, offset=(page - 1) * size)
    return ok(request, data)


async def validate(request: Request) -> Response:
    cmd = await body(request, CheckProgram)
    assessment = policy.validate(cmd.command)
    data = assessment.data()
    if not cmd.check_safety:  # whether it can be read, only
        words = assessment.warnings if not assessment.valid else []
        data = {"valid": assessment.valid, "safe": None, "risk_level": None, "warnings": words}
        data["suggestions"] = []
    data["command"] = policy.display(cmd.command)
    data["argv"] = policy.split(cmd.command) if assessment.valid else None
    return ok(request, data)


async def suggestions(request: Request) -> Response:
    query = Query(request, {"context", "prefix"})
    context = (query.text("context", 100) or "").strip().lower()
    prefix = (query.text("prefix", 500) or "").lower()
    found = [
        {"command": command, "description": description, "category": category}
        for category, command, description in CATALOGUE
        if command.lower().startswith(prefix.lstrip())
        and (not context or context == category or context in f"{command} {description}".lower())
    ]
    return ok(request, {"suggestions": found})


CATALOGUE: tuple[tuple[str, str, str], ...] = (
    ("git", "git status", "Show the working tree status"),
    ("git", "git add .", "Add all files to staging area"),
    ("git", "git commit -m", "Commit staged changes with message"),
    ("git", "git diff", "Show unstaged changes"),
    ("git", "git log --oneline -n 20", "Show the last 20 commits"),
    ("git", "git branch", "List local branches"),
    ("git", "git checkout -b", "Create and switch to a new branch"),
    ("git", "git pull --rebase", "Fetch and rebase onto the upstream branch"),
    ("git", "git push", "Push the current branch"),
    ("git", "git stash", "Set uncommitted changes aside"),
    ("npm", "npm install", "Install the dependencies of package.json"),
    ("npm", "npm ci", "Install exactly what package-lock.json says"),
    ("npm", "npm test", "Run the test script"),
    ("npm", "npm run build", "Run the build script"),
    ("npm", "npm run lint", "Run the lint script"),
    ("npm", "npm outdated", "List outdated dependencies"),
    ("python", "python -m venv .venv", "Create a virtual environment"),
    ("python", "python -m pip install -r requirements.txt", "Install the requirements"),
    ("python", "python -m pip list --outdated", "List outdated packages"),
    ("python", "python -m pytest", "Run the tests with pytest"),
    ("python", "python -m ruff check .", "Lint with ruff"),
    ("python", "python -m mypy .", "Type-check with mypy"),
    ("docker", "docker ps", "List running containers"),
    ("docker", "docker images", "List images"),
    ("docker", "docker build -t", "Build an image with a tag"),
    ("docker", "docker compose up -d", "Start the compose services in the background"),
    ("docker", "docker compose logs --tail 100", "Show the last 100 log lines of the services"),
    ("test", "pytest -q", "Run the tests, quietly"),
    ("test", "pytest -x --lf", "Run the last failed tests, stop at the first failure"),
    ("test", "npm test", "Run the JavaScript tests"),
    ("test", "go test ./...", "Run every Go test"),
    ("test", "cargo test", "Run the Rust tests"),
    ("files", "ls -la", "List files with details"),
    ("files", "pwd", "Print the working directory"),
    ("files", "du -sh .", "Size of this directory"),
    ("files", "find . -name", "Find files by name"),
    ("files", "grep -rn", "Search text in files, with line numbers"),
)

C = "/api/commands"
ENDPOINTS = [
    Endpoint(
        "POST",
        C + "/execute",
        execute,
        "Run a program on the server (admins; off unless TASKWARDEN_COMMANDS_ENABLED)",
        "commands",
        RunProgram,
        202,
        permission=Permission.ADMIN,
    ),
    Endpoint(
        "GET",
        C + "/running",
        running,
        "The team's commands still running",
        "commands",
        permission=Permission.ADMIN,
    ),
    Endpoint(
        "GET",
        C + "/history",
        history,
        "The team's commands, newest first",
        "commands",
        query=("page", "page_size", "limit", "offset"),
        permission=Permission.ADMIN,
    ),
    Endpoint(
        "GET",
        C + "/suggestions",
        suggestions,
        "Common commands, by context and prefix (runs nothing)",
        "commands",
        query=("context", "prefix"),
        permission=Permission.ADMIN,
    ),
    Endpoint(
        "POST",
        C + "/validate",
        validate,
        "Risk level, warnings and suggestions for a command (runs nothing)",
        "commands",
        CheckProgram,
        permission=Permission.ADMIN,
    ),
    Endpoint(
        "GET",
        C + "/{command_id}/status",
        status,
        "A command's status and output",
        "commands",
        permission=Permission.ADMIN,
    ),
    Endpoint(
        "POST",
        C + "/{command_id}/cancel",
        cancel,
        "Stop a running command (its whole process group)",
        "commands",
        permission=Permission.ADMIN,
    ),
]
