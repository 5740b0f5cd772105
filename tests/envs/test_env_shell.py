"""trajrec/Shell-v0: commands on the virtual tree, both action forms, and the goal predicates."""

from __future__ import annotations

import json

import pytest

from trajrec.envs import vfs
from trajrec.envs.shell import ShellEnv, parse_command_line
from trajrec.envs.shell_tasks import BASE_TREE, TASKS, solution


@pytest.fixture
def env():
    env = ShellEnv(max_steps=50)
    env.reset(options={"task_id": "shell-organize-1"})
    return env


def run(env, action):
    obs, reward, terminated, truncated, info = env.step(action)
    return obs, info


@pytest.mark.parametrize("task_id", [t.id for t in TASKS])
def test_every_task_is_solved_by_its_solution(task_id):
    env = ShellEnv()
    env.reset(options={"task_id": task_id})
    for command in solution(task_id):
        obs, reward, terminated, truncated, info = env.step(command)
        assert "error" not in info, (command, obs)
    assert terminated and reward == 1.0
    assert info["checks"] == [
        {
            "kind": "environment",
            "judge": "fs-goal@1",
            "value": True,
            "score": None,
            "rationale": "goal met: the final file tree satisfies the task",
            "target": "episode",
        }
    ]


@pytest.mark.parametrize(
    ("task_id", "commands", "problem"),
    [
        (
            "shell-organize-1",
            ["mkdir ~/Pictures", "mv ~/Downloads/beach.jpg ~/Pictures/"],
            "/home/user/Downloads/sunset.jpg is still in Downloads",
        ),
        (
            "shell-organize-1",
            ["mkdir ~/Pictures", "mv ~/Downloads/* ~/Pictures/"],
            "/home/user/Downloads/budget.csv should have stayed in Downloads",
        ),
        (
            "shell-config-1",
            ["sed -i 's/port=8000/port=8080/' ~/projects/webapp/config.ini"],
            "config.ini line 3 is 'port = 8000', expected 'port = 8080'",
        ),
        (
            "shell-config-1",
            ["echo 'port = 8080' > ~/projects/webapp/config.ini"],
            "line 1 is 'port = 8080', expected '[server]'",
        ),
        ("shell-cleanup-3", ["rm -r /var/cache/app"], "/var/cache/app/index.dat should have been kept"),
        (
            "shell-cleanup-1",
            ["rm ~/projects/webapp/build.tmp"],
            "/home/user/projects/webapp/logs/debug.tmp still exists",
        ),
        (
            "shell-layout-1",
            ["mkdir -p ~/projects/api/src ~/projects/api/tests ~/projects/api/docs"],
            "/home/user/projects/api/README.md is missing",
        ),
        (
            "shell-backup-1",
            ["cp /etc/hosts /home/user/backup"],
            "/home/user/backup is not a directory; /home/user/backup/hosts is missing or differs",
        ),
        (
            "shell-append-2",
            ["echo 'renew passport' > ~/todo.txt"],
            "/home/user/todo.txt lost or changed some of its original lines",
        ),
        (
            "shell-append-2",
            ["echo 'renew passport' >> ~/todo.txt", "rm /etc/hosts"],
            "/etc/hosts was deleted but is outside the task",
        ),
    ],
)
def test_wrong_end_states_fail_with_a_rationale_naming_the_problem(task_id, commands, problem):
    env = ShellEnv()
    env.reset(options={"task_id": task_id})
    for command in commands:
        env.step(command)
    obs, reward, terminated, truncated, info = env.step("done")
    [check] = info["checks"]
    assert terminated and reward == 0.0 and check["value"] is False
    assert problem in check["rationale"], check["rationale"]
    assert check["rationale"] in obs


def test_json_and_command_line_forms_are_the_same_tool(env):
    obs_line, info_line = run(env, "cat /etc/hosts")
    obs_json, info_json = run(env, json.dumps({"tool": "cat", "args": {"path": "/etc/hosts"}}))
    assert obs_line == obs_json == "127.0.0.1 localhost\n::1 localhost"
    assert info_line == info_json == {"tool": "cat"}
    run(env, json.dumps({"tool": "echo", "args": {"text": "a\nb", "path": "/tmp/m.txt"}}))
    run(env, json.dumps({"tool": "echo", "args": {"text": "c", "path": "/tmp/m.txt", "append": True}}))
    assert run(env, "cat /tmp/m.txt")[0] == "a\nb\nc"
    assert (
        run(env, json.dumps({"tool": "ls", "args": {"path": "/var/log", "long": True}}))[0].splitlines()[0]
        == "-     11 app.log"
    )


@pytest.mark.parametrize(
    ("action", "error"),
    [
        ("dir", "'dir': command not found"),
        ("ls | wc", "'|' is not supported"),
        ("cat a && cat b", "'&&' is not supported"),
        ("cat 'unterminated", "could not parse the command line (No closing quotation)"),
        ("ls --all", "ls: invalid option '--all'; supported options: -a -l -R"),
        ("cat > x", "cat: output redirection is only supported for echo"),
        ("cat /nope", "cat: /nope: No such file or directory"),
        ("cat ~/Downloads", "cat: ~/Downloads: Is a directory"),
        ("rm ~/Downloads", "rm: cannot remove '~/Downloads': Is a directory"),
        ("rm -r /", "rm: it is dangerous to operate recursively on '/'"),
        ("mkdir ~/a/b", "mkdir: cannot create directory '~/a/b': No such file or directory"),
        ("mkdir ~/Downloads", "File exists"),
        ("mv ~/Downloads/*.jpg ~/Pictures/", "mv: target '~/Pictures/' is not a directory"),
        ("mv ~/Downloads/song.mp3 ~/Music/", "mv: cannot move '~/Downloads/song.mp3' to '~/Music/': Not a directory"),
        ("mv ~/projects ~/projects/blog", "cannot move '~/projects' to a subdirectory of itself"),
        ("cp ~/projects /tmp", "cp: -r not specified; omitting directory '~/projects'"),
        ("echo hi > /nodir/x", "echo: /nodir/x: No such file or directory"),
        ("sed -i 's/a/b' /etc/hosts", "sed: unterminated `s' command"),
        ("sed -i 's/a/b/x' /etc/hosts", "sed: unknown option to `s'"),
        ("grep port", "grep: usage"),
        ("cd /etc/hosts", "cd: /etc/hosts: Not a directory"),
        ("find / -size 3", "find: unknown predicate '-size'"),
        ("cat\nls", "send one command per step"),
        ('{"tool": "cat", "args": {"file": "/etc/hosts"}}', "cat: unknown argument 'file' (did you mean 'path'?)"),
        ('{"tool": "cat", "args": {"path": "/etc/hosts"}', "could not parse the action as a JSON tool call"),
        ("touch " + "/a" * 30, "path is 30 levels deep, the limit is 24"),
    ],
)
def test_failing_commands_are_error_observations(env, action, error):
    before = env.state_dict()["tree"]
    obs, info = run(env, action)
    assert error in info["error"], info["error"]
    assert error in obs
    assert env.state_dict()["tree"] == before


def test_error_steps_name_the_tool_when_known(env):
    assert run(env, "cat 'unterminated")[1]["tool"] == "cat"
    assert run(env, "dir")[1]["tool"] is None
    assert run(env, '{"tool": "rm"}')[1]["tool"] == "rm"


def test_file_commands(env):
    assert run(env, "pwd")[0] == "/home/user"
    assert run(env, "ls")[0] == "Downloads/\nnotes.txt\nprojects/\ntodo.txt"
    assert run(env, "ls -a")[0].splitlines()[0] == ".bashrc"
    assert run(env, "grep -rn 8000 ~/projects")[0] == (
        "/home/user/projects/webapp/config.ini:3:port = 8000\n"
        "/home/user/projects/webapp/logs/server.log:1:2024-05-01 12:00:01 started on port 8000"
    )
    assert run(env, "grep -i MILK todo.txt")[0] == "buy milk"
    assert run(env, "grep nothing-like-this todo.txt")[0] == "(no matches)"
    assert (
        run(env, "find /var -name '*.tmp' -type f")[0]
        == "/var/cache/app/a.tmp\n/var/cache/app/b.tmp\n/var/cache/app/thumbs/t1.tmp"
    )
    run(env, "mkdir -p /srv/x/y")
    run(env, "cd /srv/x")
    assert run(env, "pwd")[0] == "/srv/x"
    run(env, "cp -r ~/projects/blog .")
    assert run(env, "ls blog/drafts")[0] == "notes.tmp\npost3.md\npost3.md~"
    run(env, "mv blog/drafts/post3.md blog/post3.md")
    assert run(env, "cat blog/post3.md")[0] == "# Third post"
    run(env, "echo hello world > note.txt")
    run(env, "echo again >> note.txt")
    run(env, "sed -i 's/o/0/g' note.txt")
    assert run(env, "cat note.txt")[0] == "hell0 w0rld\nagain"
    assert run(env, "sed 's/again/AGAIN/' note.txt")[0] == "hell0 w0rld\nAGAIN"
    run(env, "rm -r /srv/x")
    assert run(env, "pwd")[0] == "/srv"  # the cwd moved up to what still exists
    obs, info = run(env, "rm -f /does/not/exist")
    assert "error" not in info


def test_partial_failures_apply_the_rest_and_report_the_error(env):
    obs, info = run(env, "rm /etc/hosts /nope")
    assert info["error"] == "rm: cannot remove '/nope': No such file or directory"
    assert vfs.get(env.state_dict()["tree"], ("etc", "hosts")) is None


def test_disk_limits_refuse_the_change(env):
    run(env, "mkdir /tmp/big")
    chunk = json.dumps({"tool": "echo", "args": {"text": "x" * 16_000, "path": "/tmp/big/f"}})
    for i in range(12):
        run(env, chunk.replace("/tmp/big/f", f"/tmp/big/f{i}"))
    obs, info = run(env, "cp -r /tmp/big /tmp/big2")
    assert "No space left on device" in info["error"]
    assert vfs.get(env.state_dict()["tree"], ("tmp", "big2")) is None


def test_state_is_the_whole_tree_and_old_states_never_change(env):
    first = env.state_dict()
    assert first["cwd"] == "/home/user" and first["tree"] == BASE_TREE
    assert 2_000 < len(json.dumps(first["tree"])) < 10_000  # a few KB
    run(env, "rm -r ~/Downloads")
    second = env.state_dict()
    assert first["tree"] == BASE_TREE  # copy-on-write: the first snapshot is intact
    assert "Downloads" not in second["tree"]["home"]["user"]
    assert second["tree"]["etc"] is first["tree"]["etc"]  # untouched subtrees are shared


def test_wildcards_expand_in_command_lines_only(env):
    assert run(env, "ls ~/Downloads/*.mp3")[0] == "/home/user/Downloads/podcast_ep12.mp3\n/home/user/Downloads/song.mp3"
    _, info = run(env, '{"tool": "ls", "args": {"path": "~/Downloads/*.mp3"}}')
    assert "No such file or directory" in info["error"]


def test_truncation_checks_the_tree():
    env = ShellEnv(max_steps=2)
    env.reset(options={"task_id": "shell-append-2"})
    env.step("echo 'renew passport' >> ~/todo.txt")
    obs, reward, terminated, truncated, info = env.step("ls")
    assert truncated and not terminated and reward == 1.0
    assert info["checks"][0]["judge"] == "fs-goal@1" and info["checks"][0]["value"] is True


def test_parse_command_line_keeps_quotes_and_redirects():
    inv = parse_command_line("echo \"a  b\" 'c' >> ~/f.txt")
    assert inv.operands == ["a  b", "c"] and inv.redirect == (">>", "~/f.txt")


def test_the_shell_tool_takes_a_command_line_and_is_declared_as_the_text_tool():
    env = ShellEnv(max_steps=50)
    _, info = env.reset(options={"task_id": "shell-organize-1"})
    names = [t["function"]["name"] for t in info["tools"]]
    assert names[-1] == "shell" and info["text_tool"] == {"name": "shell", "argument": "command"}
    plain, _ = run(env, "ls -a /home/user")
    called, call_info = run(env, json.dumps({"tool": "shell", "args": {"command": "ls -a /home/user"}}))
    assert called == plain and call_info["tool"] == "ls"
    bad, bad_info = run(env, json.dumps({"tool": "shell", "args": {"command": "ls | wc"}}))
    assert "error" in bad_info and "'|' is not supported" in bad
    assert "shell" not in env._reset_text(env.task).split("Commands: ")[1]  # the command words stay as they were
