"""Is a command safe to run? Seed 000's ``/api/commands/validate``, also checked before every run.

The command is read as a shell would read it (operators, redirections, ``sh -c`` scripts, one level
after another), although it never runs through a shell: what a client means matters, and ``curl x |
sh`` sent as a string is refused even though, run as argv, it would only hand ``|`` to curl. Each
simple command is looked at word by word. Risk levels: ``low`` (nothing found), ``medium`` and
``high`` (warnings; it may run), ``critical`` (refused). Expansions (``$VAR``, ``$(...)``) are not
evaluated: this is a guard against accidents and obvious abuse, not a sandbox.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from typing import Any

RISKS = ("low", "medium", "high", "critical")
OPERATORS = frozenset({"|", "||", "&&", ";", "&", "(", ")", "()", "{", "}", "\n", ";;", "|&"})
REDIRECTS = frozenset({">", ">>", ">|", "&>", "&>>", ">&"})
SHELLS = frozenset({"sh", "bash", "dash", "zsh", "ksh", "fish", "busybox"})
INTERPRETERS = SHELLS | {"python", "python3", "perl", "ruby", "node", "php"}
WRAPPERS = frozenset({"env", "nice", "nohup", "time", "command", "builtin", "exec", "xargs"})
ELEVATE = frozenset({"sudo", "doas", "su", "pkexec"})
POWER = frozenset({"shutdown", "reboot", "halt", "poweroff"})
DISK = re.compile(r"^(mkfs(\..+)?|mke2fs|mkswap|fdisk|sfdisk|parted|wipefs)$")
STREAMS = re.compile(r"^/dev/(null|zero|stdout|stderr|tty|fd/\d+)$")
DEVICE = re.compile(r"^/dev/(sd|hd|vd|xvd|nvme|mmcblk|disk|dm-|md|loop)")
# exact paths whose recursive removal or permission change wrecks the host
PROTECTED = frozenset(
    {"/", "~", "$HOME", "${HOME}", "/home", "/root", "/opt", "/srv", "/mnt", "/media", "/tmp"}  # noqa: S108
)
SYSTEM_TREES = (
    *("/bin", "/boot", "/dev", "/etc", "/lib", "/lib32", "/lib64", "/proc", "/sbin"),
    *("/sys", "/usr", "/var"),
)
FORK_BOMB = re.compile(r"(\S+)\s*\(\s*\)\s*\{\s*\1\s*\|\s*\1\s*&\s*\}")
TEXT_RULES = (  # (pattern over the raw text, risk, warning)
    (FORK_BOMB, "critical", "Command is a fork bomb"),
    (re.compile(r"/dev/(tcp|udp)/"), "high", "Command opens a raw network connection"),
    (re.compile(r"\bdrop\s+(database|table|schema)\b", re.I), "high", "Command drops data"),
    (re.compile(r"rmtree\(\s*['\"](/|~)['\"]"), "critical", "Command deletes system files"),
)
DELETE_SUGGESTIONS = (
    "Use 'rm -rf ./directory' to delete specific directory",
    "Use 'ls' to list files before deletion",
)
MAX_DEPTH = 3


@dataclass
class Assessment:
    valid: bool = True
    risk_level: str = "low"
    warnings: list[str] = field(default_factory=list)
    suggestions: list[str] = field(default_factory=list)

    def flag(self, risk: str, warning: str, *suggestions: str) -> None:
        if RISKS.index(risk) > RISKS.index(self.risk_level):
            self.risk_level = risk
        for text, into in [(warning, self.warnings)] + [(s, self.suggestions) for s in suggestions]:
            if text not in into:
                into.append(text)

    @property
    def critical(self) -> bool:
        return self.risk_level == "critical"

    def data(self) -> dict[str, Any]:
        return {
            "valid": self.valid and not self.critical,
            "safe": self.valid and self.risk_level == "low",
            "risk_level": self.risk_level,
            "warnings": list(self.warnings),
            "suggestions": list(self.suggestions),
        }


def split(command: str | list[str]) -> list[str]:
    """The argv a command runs as: a list as given, a string split like a shell would (no shell)."""
    return list(command) if isinstance(command, list) else shlex.split(command)


def display(command: str | list[str]) -> str:
    return command if isinstance(command, str) else shlex.join(command)


def validate(command: str | list[str]) -> Assessment:
    found = Assessment()
    text = display(command)
    if not text.strip() or (isinstance(command, list) and not command[0].strip()):
        found.valid = False
        found.warnings.append("The command is empty")
        return found
    for pattern, risk, warning in TEXT_RULES:
        if pattern.search(text):
            found.flag(risk, warning)
    if isinstance(command, list):
        _simple(command, found, 0)
    else:
        try:
            tokens = _tokens(command)
            shlex.split(command)
        except ValueError as error:
            found.valid = False
            found.warnings.append(f"The command cannot be split into words: {error}")
            return found
        if any(t in OPERATORS or t in REDIRECTS for t in tokens):
            found.flag(
                "low",
                "No shell runs the command: operators such as '|', '&&', ';' and '>' reach the "
                "program as plain arguments",
                'Send ["sh", "-c", "..."] to run a pipeline',
            )
        _script(tokens, found, 0)
    if RISKS.index(found.risk_level) >= RISKS.index("high"):
        found.warnings.insert(0, "This command is potentially destructive")
    return found


def _tokens(script: str) -> list[str]:
    lexer = shlex.shlex(script, posix=True, punctuation_chars=";&|()<>\n")
    lexer.whitespace = " \t\r"
    lexer.whitespace_split = True
    return list(lexer)


def _script(tokens: list[str], found: Assessment, depth: int) -> None:
    """A shell script's words: simple commands between operators, redirections, pipelines."""
    current: list[str] = []
    piped_from: list[str] = []
    words = iter(tokens)
    for word in words:
        if word in REDIRECTS:
            _writes(next(words, ""), found)
        elif word in ("<", "<<", "<<<"):
            next(words, "")
        elif word in OPERATORS:
            _segment(piped_from, current, found, depth)
            piped_from = current if word in ("|", "|&") else []
            current = []
        else:
            current.append(word)
    _segment(piped_from, current, found, depth)


def _segment(piped_from: list[str], argv: list[str], found: Assessment, depth: int) -> None:
    _simple(argv, found, depth)
    program = _unwrap(list(argv), Assessment())[:1]
    if piped_from and program and _program(program[0]) in INTERPRETERS:
        source = _unwrap(list(piped_from), Assessment())[:1]
        downloaded = bool(source) and _program(source[0]) in ("curl", "wget", "fetch")
        risk, what = ("critical", "a download") if downloaded else ("high", "text")
        found.flag(risk, f"Command pipes {what} into an interpreter", _READ_FIRST)


_READ_FIRST = "Download the script to a file, read it, then run it"


def _program(word: str) -> str:
    return word.rsplit("/", 1)[-1]


# options of the wrappers that take a value: ``sudo -u bob``, ``timeout -k 5``, ``xargs -n 1``
VALUED = frozenset({"-u", "-g", "-C", "-D", "-h", "-p", "-U", "-k", "-s", "-n", "-I", "-d", "-P"})
VALUED_WRAPPERS = VALUED | {"-L", "-E", "--kill-after", "--signal", "--user", "--group"}


def _options(argv: list[str]) -> list[str]:
    """``argv`` without its leading options (and their values)."""
    while argv and argv[0].startswith("-") and argv[0] != "-":
        argv = argv[2:] if argv[0] in VALUED_WRAPPERS else argv[1:]
    return argv


def _unwrap(argv: list[str], found: Assessment) -> list[str]:
    """Drops ``VAR=x``, ``sudo``, ``env``, ``nice``, ``timeout 5`` ... in front of the program."""
    while argv:
        head = _program(argv[0])
        if re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", argv[0]):
            argv = argv[1:]
        elif head in ELEVATE:
            found.flag(
                "high",
                "Command asks for elevated privileges (and no terminal can answer a password)",
                "Run it without sudo: commands run as the server's user",
            )
            argv = [] if head == "su" else _options(argv[1:])
        elif head == "timeout":
            argv = _options(argv[1:])[1:]
        elif head in WRAPPERS:
            argv = _options(argv[1:])
        else:
            return argv
    return argv


def _simple(argv: list[str], found: Assessment, depth: int) -> None:
    argv = _unwrap(list(argv), found)
    if not argv:
        return
    program, args = _program(argv[0]), argv[1:]
    if program in SHELLS and depth < MAX_DEPTH and "-c" in args[:-1]:
        script = args[args.index("-c") + 1]
        try:
            _script(_tokens(script), found, depth + 1)
        except ValueError:
            found.flag("medium", "The shell script cannot be split into words: not checked")
        return
    rule = RULES.get(program)
    if rule is not None:
        rule(args, found)
    elif DISK.match(program):
        found.flag("critical", "Command formats or repartitions a disk")
    elif program in POWER:
        found.flag("critical", "Command stops or restarts the host")
    elif program in ("eval", "source", "."):
        found.flag("medium", "Command evaluates text at run time: what runs is not checked")


def _flags(args: list[str]) -> tuple[set[str], list[str]]:
    """Short letters and long options; and the operands."""
    flags: set[str] = set()
    operands: list[str] = []
    ended = False
    for arg in args:
        if ended or not arg.startswith("-") or arg == "-":
            operands.append(arg)
        elif arg == "--":
            ended = True
        elif arg.startswith("--"):
            flags.add(arg.split("=", 1)[0])
        else:
            flags.update(arg[1:])
    return flags, operands


def _normal(path: str) -> str:
    """``/x//y/`` and ``/x/y/*`` are ``/x/y``; ``/*`` is ``/``."""
    cleaned = re.sub(r"/+", "/", path.strip())
    stripped = re.sub(r"(/\*|\*)$", "", cleaned).rstrip("/")
    return stripped or ("/" if cleaned.startswith("/") else cleaned)


def _system(path: str) -> bool:
    """The whole host, a home, or something inside the system's own trees."""
    normal = _normal(path)
    if normal in PROTECTED or (normal.startswith("/") and normal.count("/") == 1):
        return True
    return any(normal == t or normal.startswith(t + "/") for t in SYSTEM_TREES)


def _writes(target: str, found: Assessment) -> None:
    if not target or target.isdigit() or target == "-" or STREAMS.match(target):
        return
    if DEVICE.match(target):
        found.flag("critical", "Command writes raw data to a device")
    elif _system(target):
        found.flag("critical", "Command writes to system files (/etc, /usr, ...)")


def _rm(args: list[str], found: Assessment) -> None:
    flags, targets = _flags(args)
    recursive = bool(flags & {"r", "R", "--recursive"})
    if "--no-preserve-root" in flags or any(_system(t) for t in targets):
        found.flag("critical", "Command attempts to delete system files", *DELETE_SUGGESTIONS)
    elif recursive and any(_normal(t) in (".", "", "*") or ".." in t.split("/") for t in targets):
        found.flag("high", "Command deletes this whole tree or one above it", *DELETE_SUGGESTIONS)
    elif recursive:
        found.flag("medium", "Command deletes files recursively", DELETE_SUGGESTIONS[1])


def _permissions(args: list[str], found: Assessment) -> None:
    flags, operands = _flags(args)
    recursive = bool(flags & {"R", "--recursive"})
    if any(_system(t) for t in operands[1:]):
        risk = "critical" if recursive else "high"
        found.flag(risk, "Command changes permissions of system files")
    if operands and re.fullmatch(r"0?777|a\+rwx|o\+w|ugo\+rwx", operands[0]):
        found.flag("medium", "Command makes files writable by everyone", "Use 'chmod 755' or 'u+x'")


def _dd(args: list[str], found: Assessment) -> None:
    for arg in args:
        if arg.startswith("of="):
            _writes(arg[3:], found)
    found.flag("medium", "Command copies raw data (dd)")


def _copy(args: list[str], found: Assessment) -> None:
    _, operands = _flags(args)
    if operands:
        _writes(operands[-1], found)


def _each_operand(args: list[str], found: Assessment) -> None:
    _, operands = _flags(args)
    for operand in operands:
        _writes(operand, found)


def _sed(args: list[str], found: Assessment) -> None:
    if any(a == "-i" or a.startswith(("-i", "--in-place")) for a in args):
        _each_operand(args[1:], found)


def _shred(args: list[str], found: Assessment) -> None:
    _each_operand(args, found)
    found.flag("high", "Command destroys file contents beyond recovery")


def _kill(args: list[str], found: Assessment) -> None:
    if len(args) >= 2 and args[-1] == "-1":  # kill -9 -1, kill -s KILL -1, kill -- -1
        found.flag("critical", "Command signals every process of the user")


def _systemctl(args: list[str], found: Assessment) -> None:
    _, operands = _flags(args)
    if operands[:1] and operands[0] in ("poweroff", "reboot", "halt", "kexec", "rescue"):
        found.flag("critical", "Command stops or restarts the host")
    elif operands[:1] and operands[0] in ("stop", "disable", "mask", "kill"):
        found.flag("high", "Command stops system services")


def _init(args: list[str], found: Assessment) -> None:
    if args[:1] in (["0"], ["6"]):
        found.flag("critical", "Command stops or restarts the host")


def _find(args: list[str], found: Assessment) -> None:
    if "-delete" in args or ("-exec" in args and "rm" in args):
        starts = [a for a in args if not a.startswith("-")][:1]
        risk = "critical" if any(_system(s) for s in starts) else "medium"
        found.flag(risk, "Command deletes the files it finds", DELETE_SUGGESTIONS[1])


def _git(args: list[str], found: Assessment) -> None:
    forced = {"-f", "--force"} & set(args) or any(a.startswith("+") for a in args)
    if args[:1] == ["push"] and forced:
        found.flag("medium", "Command rewrites remote history", "Use 'git push --force-with-lease'")
    elif args[:1] == ["reset"] and "--hard" in args:
        found.flag("medium", "Command discards uncommitted changes", "Use 'git stash' first")
    elif args[:1] == ["clean"] and any(a.startswith("-") and "f" in a for a in args):
        found.flag("medium", "Command deletes untracked files", "Use 'git clean -n' to preview")


def _docker(args: list[str], found: Assessment) -> None:
    words = set(args)
    if "--privileged" in words or any(re.match(r"^/:", a) for a in args):
        found.flag("high", "Container gets the host's privileges or its root file system")
    elif words & {"prune", "rm", "rmi"} and words & {"-f", "--force", "-a", "--all", "prune"}:
        found.flag("medium", "Command removes containers, images or volumes")


def _host_admin(args: list[str], found: Assessment) -> None:
    found.flag("high", "Command changes users, the firewall or scheduled jobs of the host")


def _crontab(args: list[str], found: Assessment) -> None:
    if "-r" in args:
        _host_admin(args, found)


def _killall(args: list[str], found: Assessment) -> None:
    found.flag("high", "Command signals processes by name")


RULES = {
    "rm": _rm,
    "chmod": _permissions,
    "chown": _permissions,
    "chgrp": _permissions,
    "dd": _dd,
    "cp": _copy,
    "mv": _each_operand,
    "install": _copy,
    "ln": _copy,
    "rsync": _copy,
    "tee": _each_operand,
    "truncate": _each_operand,
    "sed": _sed,
    "shred": _shred,
    "kill": _kill,
    "killall": _killall,
    "pkill": _killall,
    "systemctl": _systemctl,
    "init": _init,
    "telinit": _init,
    "find": _find,
    "git": _git,
    "docker": _docker,
    "crontab": _crontab,
    "iptables": _host_admin,
    "userdel": _host_admin,
    "useradd": _host_admin,
    "usermod": _host_admin,
    "passwd": _host_admin,
}
