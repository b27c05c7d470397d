#!/usr/bin/python3
"""gunship-exec: run a command as the app would run, for process managers without systemd's
EnvironmentFile, User or WorkingDirectory (supervisor), and for checks under them.

    gunship-exec [--user U] [--group G] [--env-file FILE] [--chdir DIR] [--setenv K=V ...]
                 [--marker FILE] [--timeout SECONDS] [--umask OCTAL] -- COMMAND [ARG ...]

The environment starts empty, as a systemd service's does: PATH, LANG, the user's HOME, USER,
LOGNAME and SHELL, then the env file's variables, then --setenv. The env file is read when the
command starts, so a changed file takes effect at the next start, not at the next config
reload. --chdir follows links once: a slot's link resolves to one release for the life of the
process. --marker writes the release (the resolved directory's name) for gunship-release.
--umask sets the file mode mask (octal, e.g. 027) before the command starts.
Without --timeout the command replaces this process (supervisor signals Gunicorn itself).
Standard library only.
"""

from __future__ import annotations

import argparse
import json
import os
import pwd
import subprocess
import sys
from pathlib import Path

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class EnvFileError(ValueError):
    pass


def parse_env(text: str, source: str = "env file") -> dict[str, str]:
    """KEY=VALUE lines, as Gunship writes them (values double-quoted JSON strings); blank lines
    and # comments are skipped; 'single-quoted' and bare values are taken as they stand."""
    found: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.partition("=")
        name = name.strip()
        if not sep or not name.replace("_", "a").isalnum() or name[0].isdigit():
            raise EnvFileError(f"{source} line {number}: expected NAME=VALUE, got {raw!r}")
        value = value.strip()
        if value.startswith('"'):
            try:
                value = json.loads(value)
            except ValueError:
                raise EnvFileError(f"{source} line {number}: {name}'s quoted value does not close") from None
        elif len(value) >= 2 and value[0] == value[-1] == "'":
            value = value[1:-1]
        found[name] = value
    return found


def environment(user: pwd.struct_passwd | None, env_file: str | None, setenv: list[str]) -> dict[str, str]:
    env = {"PATH": DEFAULT_PATH, "LANG": os.environ.get("LANG", "C.UTF-8")}
    if user:
        env |= {"HOME": user.pw_dir, "USER": user.pw_name, "LOGNAME": user.pw_name, "SHELL": user.pw_shell}
    if env_file:
        env |= parse_env(Path(env_file).read_text(), env_file)
    for item in setenv:
        name, _, value = item.partition("=")
        env[name] = value
    return env


def drop_to(user: pwd.struct_passwd, group: str | None) -> None:
    import grp

    gid = grp.getgrnam(group).gr_gid if group else user.pw_gid
    os.setgroups([])
    os.initgroups(user.pw_name, gid)
    os.setgid(gid)
    os.setuid(user.pw_uid)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gunship-exec", description=__doc__.splitlines()[0])
    parser.add_argument("--user")
    parser.add_argument("--group")
    parser.add_argument("--env-file")
    parser.add_argument("--chdir")
    parser.add_argument("--setenv", action="append", default=[])
    parser.add_argument("--marker")
    parser.add_argument("--timeout", type=float)
    parser.add_argument("--umask", type=lambda text: int(text, 8))
    parser.add_argument("command", nargs="+")
    args = parser.parse_args(argv)
    try:
        user = pwd.getpwnam(args.user) if args.user else None
        if user is None and os.geteuid() != 0:
            user = pwd.getpwuid(os.geteuid())  # started as the app user (supervisor's user=)
        env = environment(user, args.env_file, args.setenv)
        if args.user and os.geteuid() == 0:
            drop_to(user, args.group)
        if args.umask is not None:
            os.umask(args.umask)
        if args.chdir:
            os.chdir(args.chdir)
        if args.marker:
            with open(args.marker, "w") as handle:
                handle.write(Path.cwd().name + "\n")
    except (OSError, KeyError, EnvFileError) as error:
        print(f"gunship-exec: {error}", file=sys.stderr)
        return 126
    if args.timeout is None:
        os.execvpe(args.command[0], args.command, env)
    try:
        return subprocess.run(args.command, env=env, timeout=args.timeout, check=False).returncode
    except subprocess.TimeoutExpired:
        print(f"gunship-exec: {args.command[0]} ran longer than {args.timeout:g} s; stopped", file=sys.stderr)
        return 124


if __name__ == "__main__":
    sys.exit(main())
