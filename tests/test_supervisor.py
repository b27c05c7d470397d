"""Supervisor as the process manager, without a host: the program file supervisord would read
(parsed by supervisor's own code, through the role's checker), gunship-exec starting a real
process with the app's environment, and Gunicorn binding its own socket."""

from __future__ import annotations

import getpass
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from render import PROJECT, render, role_defaults
from supervisor.options import ServerOptions
from test_templates import check_config, gunicorn_vars, printed_setting

PROGRAMS = "etc/supervisor/conf.d/gunship-app.conf.j2"
CHECKER = PROJECT / "roles" / "supervisor" / "files" / "check_programs.py"
GUNSHIP_EXEC = PROJECT / "roles" / "release" / "files" / "gunship_exec.py"
RELEASE_TOOL = PROJECT / "roles" / "release" / "files" / "gunship_release.py"


def programs_file(tmp_path: Path, **overrides: object) -> Path:
    """The rendered file, with the helpers' install paths pointing at copies in tmp_path."""
    helpers = tmp_path / "helpers"
    helpers.mkdir(exist_ok=True)
    for source, name in ((GUNSHIP_EXEC, "gunship-exec"), (RELEASE_TOOL, "gunship-release")):
        shutil.copy(source, helpers / name)
        (helpers / name).chmod(0o755)
    (tmp_path / "logs").mkdir(exist_ok=True)  # supervisord refuses a log in a missing directory
    settings = {"supervisor_app_name": "shop", "supervisor_app_user": getpass.getuser()}
    settings["supervisor_log_dir"] = str(tmp_path / "logs")
    variables = role_defaults("supervisor", **{**settings, **overrides})
    text = render(PROGRAMS, variables)
    text = text.replace("/usr/local/libexec/gunship/gunship-exec", str(helpers / "gunship-exec"))
    text = text.replace("/usr/local/sbin/gunship-release", str(helpers / "gunship-release"))
    path = tmp_path / "gunship-shop.conf"
    path.write_text(text)
    return path


def check(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, CHECKER, path], capture_output=True, text=True, check=False)


def parsed(path: Path) -> dict[str, object]:
    """Each program as supervisord reads it."""
    main = path.with_name("supervisord.conf")
    main.write_text(f"[supervisord]\nlogfile=/dev/null\n[include]\nfiles={path}\n")
    options = ServerOptions()
    options.configfile = str(main)
    options.process_config(do_usage=False)
    return {p.name: p for group in options.process_group_configs for p in group.process_configs}


def test_the_default_programs_pass_the_check(tmp_path: Path) -> None:
    path = programs_file(tmp_path)
    result = check(path)
    assert result.returncode == 0, result.stderr
    programs = parsed(path)
    assert sorted(programs) == [
        "gunicorn-shop-blue",
        "gunicorn-shop-green",
        "gunship-shop-boot",
        "gunship-shop-cooldown-blue",
        "gunship-shop-cooldown-green",
    ]
    blue = programs["gunicorn-shop-blue"]
    # Nothing starts a slot but gunship-release and the boot program.
    assert (blue.autostart, programs["gunship-shop-boot"].autostart) == (False, True)
    # TERM to the whole group; KILL only after Gunicorn's graceful timeout (30) and a margin.
    assert (blue.stopsignal, blue.stopasgroup, blue.killasgroup) == (15, True, True)
    assert blue.stopwaitsecs == 40 > 30
    assert (blue.stdout_logfile, blue.stdout_logfile_maxbytes, blue.stdout_logfile_backups) == (
        str(tmp_path / "logs" / "blue.log"),
        10 * 1024 * 1024,
        5,
    )
    assert blue.redirect_stderr and blue.uid == os.getuid()
    assert "--chdir=/srv/shop/slots/blue" in blue.command
    assert blue.command.endswith(
        "/srv/shop/slots/blue/venv/bin/gunicorn --config /etc/gunship/shop/gunicorn.conf.py"
    )


def test_the_graceful_timeout_moves_the_stop_wait(tmp_path: Path) -> None:
    programs = parsed(programs_file(tmp_path, supervisor_graceful_timeout=90, supervisor_stop_margin=5))
    assert programs["gunicorn-shop-green"].stopwaitsecs == 95


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"supervisor_app_user": "no-such-user-here"}, "Invalid user name no-such-user-here"),
        ({"supervisor_log_max_bytes": "lots"}, "'lots' in section 'program:gunicorn-shop-blue'"),
    ],
    ids=["unknown user", "unreadable size"],
)
def test_the_check_refuses_what_supervisord_would(tmp_path: Path, overrides: dict, message: str) -> None:
    result = check(programs_file(tmp_path, **overrides))
    assert result.returncode == 1
    assert message in result.stderr, result.stderr


def test_the_check_refuses_a_missing_helper(tmp_path: Path) -> None:
    path = programs_file(tmp_path)
    (tmp_path / "helpers" / "gunship-release").unlink()
    result = check(path)
    assert result.returncode == 1
    assert "program gunship-shop-boot runs" in result.stderr and "not an executable file" in result.stderr


def test_gunicorn_binds_its_socket_open_only_under_supervisor(tmp_path: Path) -> None:
    # 0o111 masks execute bits only: the socket is 0666, the directory around it guards it.
    supervisor = check_config(tmp_path, gunicorn_vars(gunicorn_binds_socket=True))
    assert supervisor.returncode == 0, supervisor.stderr
    assert printed_setting(supervisor.stdout, "umask") == str(0o111)
    systemd = check_config(tmp_path, gunicorn_vars())
    assert printed_setting(systemd.stdout, "umask") == "0"


# --- gunship-exec ----------------------------------------------------------------------------
PRINT = "import json, os; print(json.dumps({'env': dict(os.environ), 'cwd': os.getcwd()}))"


def gunship_exec(*args: str, env: dict | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, GUNSHIP_EXEC, *args], capture_output=True, text=True, check=False, env=env
    )


@pytest.fixture
def release(tmp_path: Path) -> Path:
    """A slot link to a release directory, and an env file as the release role writes it."""
    target = tmp_path / "releases" / "20261122T000000Z"
    target.mkdir(parents=True)
    (tmp_path / "blue").symlink_to(target)
    (tmp_path / "env").write_text(
        "# Managed by Gunship\n"
        'SECRET_KEY="s3cr=t \\"quoted\\" value"\n'
        "\n"
        "PLAIN=bare words\n"
        "SINGLE='kept as is'\n"
    )
    return tmp_path


@pytest.mark.parametrize("timeout", [None, "30"], ids=["exec", "with a timeout"])
def test_gunship_exec_starts_with_the_env_file_in_the_resolved_release(release: Path, timeout) -> None:
    marker = release / "release"
    args = [f"--env-file={release / 'env'}", f"--chdir={release / 'blue'}", "--setenv=GUNSHIP_SLOT=blue"]
    args += [f"--marker={marker}"] + ([f"--timeout={timeout}"] if timeout else [])
    result = gunship_exec(*args, "--", sys.executable, "-c", PRINT, env={**os.environ, "LEAKED": "1"})
    assert result.returncode == 0, result.stderr
    seen = __import__("json").loads(result.stdout)
    assert seen["cwd"] == str(release / "releases" / "20261122T000000Z")  # the link, resolved
    env = seen["env"]
    assert env["SECRET_KEY"] == 's3cr=t "quoted" value'
    assert (env["PLAIN"], env["SINGLE"], env["GUNSHIP_SLOT"]) == ("bare words", "kept as is", "blue")
    assert "LEAKED" not in env and env["PATH"].startswith("/usr/local/sbin")
    assert marker.read_text() == "20261122T000000Z\n"


def test_gunship_exec_names_the_bad_line_of_an_env_file(release: Path) -> None:
    (release / "env").write_text("GOOD=1\nthis line has no equals sign\n")
    result = gunship_exec(f"--env-file={release / 'env'}", "--", "true")
    assert result.returncode == 126
    assert "line 2: expected NAME=VALUE" in result.stderr


def test_gunship_exec_stops_a_command_that_runs_too_long(release: Path) -> None:
    result = gunship_exec("--timeout=0.5", "--", "sleep", "10")
    assert result.returncode == 124
    assert "ran longer than 0.5 s" in result.stderr
