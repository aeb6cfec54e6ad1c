"""The outputs: replacing them atomically, and telling whether they are current.

Owns every write of the build: the package, with --deploy the deployment files' folder, and
with --asyncapi and --graph one file each. A build writes a complete new folder into a
temporary directory beside the target, then swaps it in with one rename, so the target is
always either the old folder or the new one; a document is written beside its file and renamed
over it. It refuses to replace what it did not generate: a package is one with a manifest.json
listing its files, a deploy folder one whose every file starts with the generated header, a
document a file that starts with its own. Knows nothing of what the files contain beyond
manifest.json and those headers.
"""

from __future__ import annotations

import ctypes
import difflib
import errno
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from . import documents
from .deploy import MARK
from .render import MANIFEST

_IGNORED = {"__pycache__"}
_HEAD = 4096  # bytes read of a document to tell whether it was generated: its first two lines


class OutputError(Exception):
    """The output directory cannot be written; the message says why and what to do."""


@dataclass(slots=True)
class Comparison:
    """How the package on disk differs from a fresh build."""

    is_current: bool
    reasons: list[str] = field(default_factory=list)
    diff: str = ""


def write(files: dict[str, str], target: Path, *, deploy: bool = False) -> None:
    """Replace `target` with a package (or, with `deploy`, a deploy folder) holding exactly `files`."""
    target = target.absolute()
    check_replaceable(target, deploy=deploy)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        _fill(staging, files)
        if target.exists():
            _swap(staging, target)
        else:
            os.rename(staging, target)
        _fsync_directory(target.parent)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def compare(files: dict[str, str], target: Path, *, what: str = "the package") -> Comparison:
    """Compare without writing. Only the build environment in the manifest may differ."""
    if not target.is_dir():
        return Comparison(False, [f"{target} does not exist"])
    on_disk = {path.name: path for path in target.iterdir() if path.name not in _IGNORED}
    reasons, diffs = [], []
    for name in sorted(set(files) | set(on_disk)):
        if name not in on_disk:
            reasons.append(f"{name} is missing")
        elif name not in files:
            reasons.append(f"{name} is not part of {what}")
        else:
            old = on_disk[name].read_text(encoding="utf-8", errors="replace")
            if name == MANIFEST:
                reasons += _manifest_changes(old, files[name])
            elif old != files[name]:
                reasons.append(f"{name} differs")
                diffs.append(_unified(name, old, files[name]))
    return Comparison(not reasons, reasons, "".join(diffs))


def check_replaceable(target: Path, *, deploy: bool = False) -> None:
    """Raise OutputError unless `target` is absent or a folder this command may replace whole."""
    if not target.exists():
        return
    if not target.is_dir():
        raise OutputError(f"{target} exists and is not a directory; choose another {'--deploy' if deploy else '-o'}")
    if deploy:
        _check_deploy_folder(target)
        return
    manifest = target / MANIFEST
    try:
        listed = set(json.loads(manifest.read_text(encoding="utf-8"))["files"]) | {MANIFEST}
    except (OSError, ValueError, KeyError, TypeError):
        raise OutputError(
            f"{target} exists but was not written by dispatcher-build (no valid {MANIFEST}); "
            "it is left untouched: remove it, or choose another -o"
        ) from None
    extra = sorted(path.name for path in target.iterdir() if path.name not in listed | _IGNORED)
    if extra:
        raise OutputError(
            f"{target} holds files dispatcher-build did not write ({', '.join(extra)}); "
            "they would be lost, so nothing was written: move them out of the generated package"
        )


def write_file(text: str, target: Path, kind: documents.Kind) -> None:
    """Replace the file `target` with the document `text`, in one rename: readers see the old
    file or the new one."""
    target = target.absolute()
    check_file_replaceable(target, kind)
    target.parent.mkdir(parents=True, exist_ok=True)
    descriptor, staging = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with open(descriptor, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(staging, 0o666 & ~umask)
        os.rename(staging, target)
        _fsync_directory(target.parent)
    finally:
        if os.path.exists(staging):
            os.unlink(staging)


def compare_file(text: str, target: Path) -> Comparison:
    """Compare a document on disk with a fresh one, without writing."""
    if not target.is_file():
        return Comparison(False, [f"{target} {'is not a file' if target.exists() else 'does not exist'}"])
    old = target.read_text(encoding="utf-8", errors="replace")
    if old == text:
        return Comparison(True)
    return Comparison(False, [f"{target.name} differs"], _unified(target.name, old, text))


def check_file_replaceable(target: Path, kind: documents.Kind) -> None:
    """Raise OutputError unless `target` is absent or a document of this kind that dispatcher-build wrote."""
    if not target.exists() and not target.is_symlink():
        return
    if target.is_symlink() or not target.is_file():
        raise OutputError(f"{kind.option} {target}: it exists and is not a regular file; choose another path")
    with open(target, "rb") as handle:
        head = handle.read(_HEAD).decode("utf-8", errors="replace")
    if not kind.is_generated(head):
        raise OutputError(
            f"{kind.option} {target}: the file exists and is not {kind.what} written by dispatcher-build (it does "
            "not start with the generated header); it is left untouched: remove it, or choose another path"
        )


def _check_deploy_folder(target: Path) -> None:
    foreign = sorted(path.name for path in target.iterdir() if not _is_generated(path))
    if foreign:
        raise OutputError(
            f"{target} holds files dispatcher-build did not write ({', '.join(foreign)}); "
            "they would be lost, so nothing was written: keep the deploy folder for generated files only"
        )


def _is_generated(path: Path) -> bool:
    """A regular file that starts with the header every deployment file starts with."""
    if path.is_symlink() or not path.is_file():
        return False
    marker = MARK.encode("utf-8")
    with open(path, "rb") as handle:
        return handle.read(len(marker)) == marker


def _fill(directory: Path, files: dict[str, str]) -> None:
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(directory, 0o777 & ~umask)
    for name, text in sorted(files.items()):
        path = directory / name
        with open(path, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(path, 0o666 & ~umask)
    _fsync_directory(directory)


def _swap(staging: Path, target: Path) -> None:
    """Exchange the two directories in one step where the OS allows it, else in two renames."""
    if _exchange(staging, target):
        return  # staging now holds the old package, and the caller removes it
    retired = staging.with_name(staging.name + ".old")
    os.rename(target, retired)
    try:
        os.rename(staging, target)
    except OSError:
        os.rename(retired, target)
        raise
    shutil.rmtree(retired, ignore_errors=True)


def _exchange(first: Path, second: Path) -> bool:
    """renameat2(RENAME_EXCHANGE) on Linux; False where the call does not exist."""
    libc = ctypes.CDLL(None, use_errno=True)
    renameat2 = getattr(libc, "renameat2", None)
    if renameat2 is None:
        return False
    at_fdcwd, rename_exchange = -100, 2
    result = renameat2(at_fdcwd, os.fsencode(first), at_fdcwd, os.fsencode(second), rename_exchange)
    if result == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        return False
    raise OSError(code, os.strerror(code), str(second))


def _fsync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _manifest_changes(old_text: str, new_text: str) -> list[str]:
    try:
        old = json.loads(old_text)
    except ValueError:
        return [f"{MANIFEST} is not valid JSON"]
    new = json.loads(new_text)
    reasons = []
    if old.get("generator") != new["generator"]:
        old_version = (old.get("generator") or {}).get("version")
        reasons.append(f"it was generated by dispatcher-build {old_version}, this is {new['generator']['version']}")
    if old.get("config") != new["config"]:
        reasons.append("the config changed since it was generated")
    if old.get("files") != new["files"] and not reasons:
        reasons.append(f"{MANIFEST} lists other files")
    return reasons


def _unified(name: str, old: str, new: str) -> str:
    lines = difflib.unified_diff(
        old.splitlines(keepends=True), new.splitlines(keepends=True), f"{name} (on disk)", f"{name} (fresh build)"
    )
    return "".join(lines)
