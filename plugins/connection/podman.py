"""podman connection with pipelining, for the sandbox and the Molecule scenarios.

The containers.podman connection runs `podman exec` without `-i`, so it cannot pipe a module to
the remote Python: every task costs a temporary directory, a copy, a chmod, the run and a clean-up
(five `podman exec` calls). Hosts in production are reached over SSH with pipelining (one round
trip per task, see ansible.cfg); this plugin gives containers the same: `podman exec -i` feeds the
module on stdin. Everything else (copying files, the mount, the options) is the collection's.

Found under the name `podman` (Molecule's podman driver writes `ansible_connection: podman`)
because ansible.cfg puts plugins/connection first on the connection plugin path.
"""

from __future__ import annotations

import shlex

from ansible.module_utils.common.text.converters import to_native
from ansible.plugins.connection import ensure_connect
from ansible_collections.containers.podman.plugins.connection.podman import Connection as PodmanConnection

DOCUMENTATION = """
name: podman
short_description: Run tasks in podman containers, modules piped to the remote Python
description:
  - The containers.podman.podman connection, with pipelining (podman exec -i).
author: Gunship
options:
  remote_addr:
    description: The container's name or ID.
    default: inventory_hostname
    vars:
      - name: ansible_host
      - name: inventory_hostname
      - name: ansible_podman_host
  remote_user:
    description: User to run commands as inside the container.
    ini:
      - section: defaults
        key: remote_user
    env:
      - name: ANSIBLE_REMOTE_USER
    vars:
      - name: ansible_user
  podman_extra_args:
    description: Extra arguments for the podman command line.
    default: ''
    vars:
      - name: ansible_podman_extra_args
    env:
      - name: ANSIBLE_PODMAN_EXTRA_ARGS
  podman_executable:
    description: The podman executable.
    default: podman
    vars:
      - name: ansible_podman_executable
    env:
      - name: ANSIBLE_PODMAN_EXECUTABLE
  pipelining:
    description: Pipe modules to the remote Python instead of copying them.
    default: true
    type: boolean
    env:
      - name: ANSIBLE_PIPELINING
    vars:
      - name: ansible_pipelining
"""


class Connection(PodmanConnection):
    transport = "podman"
    has_pipelining = True

    @ensure_connect
    def exec_command(self, cmd: str, in_data: bytes | None = None, sudoable: bool = False) -> tuple:
        # ConnectionBase's bookkeeping only; the collection's version would run without -i.
        super(PodmanConnection, self).exec_command(cmd, in_data=in_data, sudoable=sudoable)
        args = ["exec", "-i"] if in_data is not None else ["exec"]
        if self.user:
            args += ["--user", self.user]
        return self._podman(args, shlex.split(to_native(cmd, errors="surrogate_or_strict")), in_data)
