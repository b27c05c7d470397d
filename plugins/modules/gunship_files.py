#!/usr/bin/python3
"""Ensure a list of directories, files and links on a host in one call.

A role's files used to cost one module call each (about 0.2-0.5 s apiece: a template is a stat,
a copy and a chmod round trip). This module takes the whole list, with each file's content
rendered on the control node, compares it with what is on the host and changes only what
differs, in order. It reports which paths changed, so that a task after it can tell them apart.

Each entry:

    path      absolute path on the host (required, unless paths is given)
    paths     several paths with the same other keys: one entry each
    state     directory | file | link | absent (default: file)
    content   the file's text (state=file)
    src       the link's target (state=link)
    owner     user name (default root)
    group     group name (default root)
    mode      octal string, "0644" (default 0644 for files, 0755 for directories)
    validate  command run on the new file before it replaces the old one; %s is its path
    create_only  true: write the content only when there is no file (its content is then someone
              else's, as `copy force: false`); its owner, group and mode are still ensured
    report_only  true: never write it; `differs` lists it when the host's copy is not the one
              given (a task after this one installs it)
    secret    true: no diff of its content, and the content is masked wherever the result
              would show it (the module's echo of its arguments)

A file is written to a temporary file beside it (owner and mode set, validated) and renamed
over the old one: a reader sees the old or the new file, never half of one. Nothing after the
first failure is changed; `changed_paths` says what was changed before it.

With `manifest` (a JSON file on the host), every path the call ensured is added to it, with
what a later check compares: the whole file (content, owner, mode) or, for create_only, its
owner and mode alone. gunship-release reads it to tell a host left as a deploy left it.
"""

from __future__ import annotations

import grp
import json
import os
import pwd
import stat
import subprocess
import tempfile
from typing import Any

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
module: gunship_files
short_description: Ensure a list of directories, files and links in one call
description: See the module's docstring in plugins/modules/gunship_files.py.
options:
  files:
    description: The entries, in the order they are ensured.
    type: list
    elements: dict
    required: true
  manifest:
    description: A JSON file on the host that lists every path this call ensured.
    type: str
author: Gunship
"""


def _ids(entry: dict[str, Any]) -> tuple[int, int]:
    owner, group = entry.get("owner") or "root", entry.get("group") or "root"
    try:
        uid = pwd.getpwnam(owner).pw_uid
    except KeyError:
        raise ValueError(f"{entry['path']}: the owner {owner!r} is no user on this host") from None
    try:
        gid = grp.getgrnam(group).gr_gid
    except KeyError:
        raise ValueError(f"{entry['path']}: the group {group!r} is no group on this host") from None
    return uid, gid


def _mode(entry: dict[str, Any], default: str) -> int:
    text = str(entry.get("mode") or default)
    try:
        return int(text, 8)
    except ValueError:
        raise ValueError(f"{entry['path']}: the mode {text!r} is not an octal number") from None


def _attrs_differ(st: os.stat_result, uid: int, gid: int, mode: int) -> bool:
    return st.st_uid != uid or st.st_gid != gid or stat.S_IMODE(st.st_mode) != mode


def _read(path: str) -> bytes | None:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def ensure_directory(entry: dict[str, Any], check: bool) -> tuple[bool, dict[str, str] | None]:
    path = entry["path"]
    uid, gid = _ids(entry)
    mode = _mode(entry, "0755")
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        if not check:
            # Missing parents as `mkdir -p` makes them (root's, 0755), as Ansible's file module does.
            os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
            os.mkdir(path, 0o700)
            os.chown(path, uid, gid)
            os.chmod(path, mode)
        return True, {"before": f"{path}: absent\n", "after": f"{path}: directory\n"}
    if not stat.S_ISDIR(st.st_mode):
        raise ValueError(f"{path} should be a directory, and is another kind of file: left as it is")
    if _attrs_differ(st, uid, gid, mode):
        if not check:
            os.chown(path, uid, gid)
            os.chmod(path, mode)
        after = f"uid {uid}, gid {gid}, mode {mode:o}"
        return True, {"before": f"{path}: {_describe(st)}\n", "after": f"{path}: {after}\n"}
    return False, None


def _describe(st: os.stat_result) -> str:
    return f"uid {st.st_uid}, gid {st.st_gid}, mode {stat.S_IMODE(st.st_mode):o}"


def ensure_file(entry: dict[str, Any], check: bool) -> tuple[bool, dict[str, str] | None]:
    path = entry["path"]
    uid, gid = _ids(entry)
    mode = _mode(entry, "0644")
    new = entry.get("content", "").encode()
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        st = None
    if st is not None and entry.get("create_only"):  # the content is someone else's; the rest ours
        if not stat.S_ISREG(st.st_mode) or not _attrs_differ(st, uid, gid, mode):
            return False, None
        if not check:
            os.chown(path, uid, gid)
            os.chmod(path, mode)
        return True, None
    if st is not None and not stat.S_ISREG(st.st_mode):
        raise ValueError(f"{path} should be a file, and is another kind of file: left as it is")
    old = _read(path) if st is not None else None
    if old == new and not _attrs_differ(st, uid, gid, mode):
        return False, None
    diff = None
    if not entry.get("secret"):
        diff = {
            "before_header": path,
            "after_header": path,
            "before": "" if old is None else old.decode(errors="replace"),
            "after": new.decode(errors="replace"),
        }
    if check:
        return True, diff
    if old == new:  # only the owner or the mode
        os.chown(path, uid, gid)
        os.chmod(path, mode)
        return True, diff
    directory, name = os.path.split(path)
    handle, staged = tempfile.mkstemp(prefix=f".{name}.", dir=directory)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(new)
        os.chown(staged, uid, gid)
        os.chmod(staged, mode)
        if entry.get("validate"):
            command = entry["validate"].replace("%s", staged)
            run = subprocess.run(command, shell=True, capture_output=True, text=True, check=False)
            if run.returncode != 0:
                raise ValueError(
                    f"{path}: the new file failed its check ({entry['validate']}) and was not "
                    f"installed; the old one is in place:\n{(run.stdout + run.stderr).strip()}"
                )
        os.replace(staged, path)
    finally:
        if os.path.lexists(staged):
            os.unlink(staged)
    return True, diff


def ensure_link(entry: dict[str, Any], check: bool) -> tuple[bool, dict[str, str] | None]:
    path, target = entry["path"], entry["src"]
    if os.path.islink(path) and os.readlink(path) == target:
        return False, None
    if os.path.isdir(path) and not os.path.islink(path):
        raise ValueError(f"{path} should be a link to {target}, and is a directory: left as it is")
    if not check:
        staged = f"{path}.gunship-{os.getpid()}"
        os.symlink(target, staged)
        os.replace(staged, path)
    before = os.readlink(path) if os.path.islink(path) else "absent"
    return True, {"before": f"{path} -> {before}\n", "after": f"{path} -> {target}\n"}


def ensure_absent(entry: dict[str, Any], check: bool) -> tuple[bool, dict[str, str] | None]:
    path = entry["path"]
    if not os.path.lexists(path):
        return False, None
    if os.path.isdir(path) and not os.path.islink(path):
        raise ValueError(f"{path} should be absent, and is a directory: Gunship removes files only")
    if not check:
        os.unlink(path)
    return True, {"before": f"{path}\n", "after": ""}


ENSURE = {"directory": ensure_directory, "file": ensure_file, "link": ensure_link, "absent": ensure_absent}


def add_to_manifest(manifest: str, entries: list[dict[str, Any]]) -> None:
    """Merge the paths into the manifest: {path: "whole" | "attributes"} (create_only files: the
    content is someone else's). A report_only file counts whole: a call after this one installs
    it when it differs, and a run that fails before that records nothing as settled. Paths from
    earlier calls stay: one that is no longer ensured only makes a later check look at a file
    nobody changes."""
    try:
        with open(manifest) as handle:
            known = json.load(handle)
    except (FileNotFoundError, ValueError):
        known = {}
    for entry in entries:
        known[entry["path"]] = "attributes" if entry.get("create_only") else "whole"
    os.makedirs(os.path.dirname(manifest), mode=0o755, exist_ok=True)
    handle, staged = tempfile.mkstemp(prefix=".manifest.", dir=os.path.dirname(manifest))
    with os.fdopen(handle, "w") as out:
        json.dump(known, out, indent=0, sort_keys=True)
    os.replace(staged, manifest)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "files": {"type": "list", "elements": "dict", "required": True},
            "manifest": {"type": "str"},
        },
        supports_check_mode=True,
    )
    changed, differs, diffs = [], [], []
    entries = []
    for entry in module.params["files"]:
        if "paths" in entry:
            entries += [{**entry, "path": path} for path in entry["paths"] or []]
        else:
            entries.append(entry)
    for entry in entries:
        if entry.get("secret") and entry.get("content"):
            module.no_log_values.add(entry["content"])
    for entry in entries:
        state = entry.get("state") or "file"
        try:
            if state not in ENSURE:
                raise ValueError(f"{entry.get('path')}: state {state!r} is none of {', '.join(ENSURE)}")
            if not os.path.isabs(entry.get("path") or ""):
                raise ValueError(f"{entry.get('path')!r} is not an absolute path")
            if entry.get("report_only"):  # what ensure_file would change, changing nothing
                if ensure_file(entry, check=True)[0]:
                    differs.append(entry["path"])
                continue
            did, diff = ENSURE[state](entry, module.check_mode)
        except (OSError, ValueError) as error:
            module.fail_json(msg=str(error), changed=bool(changed), changed_paths=changed)
        if did:
            changed.append(entry["path"])
            if diff:
                diffs.append(diff)
    if module.params["manifest"] and not module.check_mode:
        try:
            add_to_manifest(module.params["manifest"], entries)
        except OSError as error:
            message = f"{module.params['manifest']}: {error}"
            module.fail_json(msg=message, changed=bool(changed), changed_paths=changed)
    module.exit_json(changed=bool(changed), changed_paths=changed, differs=differs, diff=diffs)


if __name__ == "__main__":
    main()
