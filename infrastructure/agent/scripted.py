"""The bundled scripted agent: follows the script in its task's metadata, speaking the protocol.

Run as `python -m infrastructure.agent.scripted`. It reads the task (id, title, description,
metadata, attempt, workspace) from the JSON file named by TASKWARDEN_TASK_FILE, or, for manual use,
a script (a JSON list of steps) or a task (a JSON object) from its first argument. The step language
and the exit codes are in docs/agent-protocol.md. Demos and tests need no model.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import msgspec

from infrastructure.agent.protocol import (
    Answer,
    CancelNotice,
    Checkpoint,
    Decision,
    Experience,
    Message,
    Notice,
    Phase,
    Progress,
    Question,
    Result,
    Say,
    Usage,
    decode_reply,
    encode,
)

T = TypeVar("T", Answer, Decision, Notice)

OK, FAILED, BAD_SCRIPT, REJECTED, NO_REPLY = 0, 1, 2, 3, 4
CANCELLED, TERMINATED = 130, 143


class Stop(Exception):
    """Ends the script with an exit code."""

    def __init__(self, code: int, why: str | None = None) -> None:
        super().__init__(why or f"exit {code}")
        self.code = code
        self.why = why


class Channel:
    """Protocol lines out on stdout; answers, decisions and cancel notices in from stdin."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._replies: queue.Queue[Answer | Decision | Notice | None] = queue.Queue()
        self._closed = False
        threading.Thread(target=self._listen, daemon=True).start()

    def emit(self, message: Message | Say) -> None:
        with self._lock:
            sys.stdout.buffer.write(encode(message))
            sys.stdout.buffer.flush()

    def say(self, text: str) -> None:
        self.emit(Say(text=text))

    def wait_for(self, kind: type[T], reply_id: str) -> T:
        """The next reply of `kind` for `reply_id` (or for no id in particular)."""
        while not self._closed:
            reply = self._replies.get()
            if reply is None:
                self._closed = True
            elif isinstance(reply, kind) and _reply_id(reply) in (None, reply_id):
                return reply
        raise Stop(NO_REPLY, "stdin closed while waiting for a reply")

    def _listen(self) -> None:
        for line in sys.stdin.buffer:
            reply = decode_reply(line)
            if isinstance(reply, CancelNotice):
                self.say("cancelled")
                os._exit(CANCELLED)
            if reply is not None:
                self._replies.put(reply)
        self._replies.put(None)


def _reply_id(reply: Answer | Decision | Notice) -> str | None:
    if isinstance(reply, Notice):
        return None
    return reply.question_id if isinstance(reply, Answer) else reply.checkpoint_id


class Run:
    """One run of a script: the channel, the task, and counters for question and checkpoint ids."""

    def __init__(self, channel: Channel, task: dict[str, Any]) -> None:
        self.channel = channel
        self.task = task
        self.asked = 0
        self.checkpoints = 0

    def step(self, step: dict[str, Any]) -> None:
        verb = next((key for key in STEPS if key in step), None)
        if verb is None:
            raise Stop(BAD_SCRIPT, f"unknown step {json.dumps(step)[:200]}")
        STEPS[verb](self, step)

    def emit(self, kind: type[Any], fields: dict[str, Any]) -> None:
        try:
            self.channel.emit(msgspec.convert(fields, kind))
        except msgspec.ValidationError as error:
            raise Stop(BAD_SCRIPT, f"bad {kind.__name__.lower()} step: {error}") from None


def _say(run: Run, step: dict[str, Any]) -> None:
    run.channel.say(str(step["say"]))


def _phase(run: Run, step: dict[str, Any]) -> None:
    run.emit(Phase, {"name": step["phase"], "status": step.get("status", "started")})


def _progress(run: Run, step: dict[str, Any]) -> None:
    run.emit(Progress, {"percentage": step["progress"], "message": step.get("message")})


def _ask(run: Run, step: dict[str, Any]) -> None:
    run.asked += 1
    question_id = str(step.get("id") or f"q{run.asked}")
    fields: dict[str, Any] = {k: step[k] for k in ("options", "default") if k in step}
    run.emit(Question, {"id": question_id, "question": step["ask"], **fields})
    answer = run.channel.wait_for(Answer, question_id)
    run.channel.say(f"answer: {answer.response}")


def _checkpoint(run: Run, step: dict[str, Any]) -> None:
    run.checkpoints += 1
    checkpoint_id = str(step.get("id") or f"c{run.checkpoints}")
    fields: dict[str, Any] = {k: step[k] for k in ("description", "data") if k in step}
    run.emit(Checkpoint, {"id": checkpoint_id, "action": step["checkpoint"], **fields})
    decision = run.channel.wait_for(Decision, checkpoint_id)
    if decision.approved:
        run.channel.say("approved")
        return
    run.channel.say(f"rejected: {decision.reason}")
    if step.get("on_reject") != "continue":
        raise Stop(REJECTED)


def _write(run: Run, step: dict[str, Any]) -> None:
    spec = step["write"]
    root = Path.cwd().resolve()
    target = (root / str(spec["path"])).resolve()
    if Path(str(spec["path"])).is_absolute() or not target.is_relative_to(root):
        raise Stop(BAD_SCRIPT, f"refusing to write outside the workspace: {spec['path']}")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(str(spec.get("content", "")), encoding="utf-8")


def _sleep(run: Run, step: dict[str, Any]) -> None:
    time.sleep(float(step["sleep"]))


def _wait_for_notice(run: Run, step: dict[str, Any]) -> None:
    """Waits (for ever: the execution's timeout bounds it) for a notice, and says it."""
    notice = run.channel.wait_for(Notice, "")
    run.channel.say(f"notice ({notice.kind}): {notice.message}")


def _exit(run: Run, step: dict[str, Any]) -> None:
    raise Stop(int(step["exit"]))


def _fail_on_attempt(run: Run, step: dict[str, Any]) -> None:
    attempt = int(run.task.get("attempt") or 1)
    if attempt <= int(step["fail_on_attempt"]):
        run.channel.say(f"failing on attempt {attempt}")
        raise Stop(FAILED)


def _spawn_sleeper(run: Run, step: dict[str, Any]) -> None:
    sleeper = subprocess.Popen(["sleep", str(float(step["spawn_sleeper"]))])  # noqa: S603, S607
    run.channel.say(f"sleeper {sleeper.pid}")


STEPS: dict[str, Callable[[Run, dict[str, Any]], None]] = {
    "say": _say,
    "phase": _phase,
    "progress": _progress,
    "ask": _ask,
    "checkpoint": _checkpoint,
    "usage": lambda run, step: run.emit(Usage, step["usage"]),
    "experience": lambda run, step: run.emit(Experience, step["experience"]),
    "result": lambda run, step: run.emit(Result, step["result"]),
    "write": _write,
    "sleep": _sleep,
    "wait_for_notice": _wait_for_notice,
    "exit": _exit,
    "fail_on_attempt": _fail_on_attempt,
    "spawn_sleeper": _spawn_sleeper,
}


def load_task(argv: list[str], environ: dict[str, str]) -> dict[str, Any]:
    """The task from TASKWARDEN_TASK_FILE, else a script or a task given as JSON in argv[1]."""
    task_file = environ.get("TASKWARDEN_TASK_FILE")
    try:
        if task_file:
            value = json.loads(Path(task_file).read_text(encoding="utf-8"))
        elif len(argv) > 1:
            value = json.loads(argv[1])
        else:
            raise Stop(BAD_SCRIPT, "no task: set TASKWARDEN_TASK_FILE or pass a script as JSON")
    except (OSError, ValueError) as error:
        raise Stop(BAD_SCRIPT, f"cannot read the task: {error}") from None
    if isinstance(value, list):
        return {"title": "scripted run", "metadata": {"script": value}}
    if not isinstance(value, dict):
        raise Stop(BAD_SCRIPT, "the task must be a JSON object and a script a JSON list")
    return value


def run(argv: list[str], environ: dict[str, str]) -> int:
    channel = Channel()
    try:
        task = load_task(argv, environ)
        script = (task.get("metadata") or {}).get("script")
        if not script:
            channel.say(str(task.get("title") or "no title"))
            return OK
        if not isinstance(script, list):
            raise Stop(BAD_SCRIPT, "metadata.script must be a list of steps")
        current = Run(channel, task)
        for number, step in enumerate(script, 1):
            if not isinstance(step, dict):
                raise Stop(BAD_SCRIPT, f"step {number} is not an object")
            try:
                current.step(step)
            except (KeyError, TypeError, ValueError) as error:
                raise Stop(BAD_SCRIPT, f"step {number}: bad value {error}") from None
    except Stop as stop:
        if stop.why:
            print(stop.why, file=sys.stderr, flush=True)
        return stop.code
    return OK


def main() -> None:
    signal.signal(signal.SIGTERM, lambda signum, frame: os._exit(TERMINATED))
    code = run(sys.argv, dict(os.environ))
    sys.stdout.flush()
    os._exit(code)  # the stdin reader may still be blocked on a read


if __name__ == "__main__":
    main()
