#!/usr/bin/python3
"""Check a supervisord program file before it is installed: supervisord parses it (as an include
of an otherwise empty configuration) the way it would at `reread`, with its own checks of
users, signals, numbers and sizes; then each program's executable must exist.

    check-supervisor-programs FILE

Runs on the host's python3, with Debian's supervisor package.
"""

from __future__ import annotations

import os
import shlex
import sys
import tempfile
from pathlib import Path

from supervisor.options import ServerOptions


def problems(path: str) -> list[str]:
    with tempfile.TemporaryDirectory() as tmp:
        main = Path(tmp, "supervisord.conf")
        main.write_text(
            f"[supervisord]\nlogfile={tmp}/supervisord.log\npidfile={tmp}/supervisord.pid\n"
            f"[include]\nfiles={os.path.abspath(path)}\n"
        )
        options = ServerOptions()
        options.configfile = str(main)
        try:
            options.process_config(do_usage=False)
        except ValueError as error:
            return [str(error)]
    found = []
    groups = options.process_group_configs
    if not groups:
        found.append("it defines no program")
    for group in groups:
        for program in group.process_configs:
            executable = shlex.split(program.command)[0]
            if not os.access(executable, os.X_OK):
                found.append(f"program {program.name} runs {executable}, which is not an executable file")
    return found


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__.strip().splitlines()[3].strip(), file=sys.stderr)
        return 2
    found = problems(argv[1])
    for problem in found:
        print(f"{argv[1]}: {problem}", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
