"""The image's build context: where the generated package and the user's modules sit in it.

Owns finding, for the Dockerfile's COPY lines, each top-level module that the config imports
(its consumers' and its startup handler's) the way the import probe finds it: in the import
roots, in order (the current directory, then each --path), as a package folder or a `.py`
file. The build context is the config's directory, so everything copied must lie inside it;
a module found in no root comes from an installed distribution, which the image installs
from its requirements instead. Paths are relative to the context and use `/`, so that the
Dockerfile does not depend on where the build ran. Knows nothing of the Dockerfile's text.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from amqp_dispatcher.runtime.spec import Service

from ..refs import ImportRef


class LayoutError(Exception):
    """Something the image needs lies outside its build context; the message says what to do."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Copy:
    """One COPY: `source` in the build context (a folder ends with `/`) to `target` in /app."""

    source: str
    target: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Layout:
    """What the image copies, and the modules it expects its requirements to install."""

    package: Copy
    modules: tuple[Copy, ...]
    installed: tuple[str, ...]  # top-level modules found in no import root
    deploy: str  # the deployment files' folder, relative to the context (for `docker build -f`)


def resolve(
    service: Service[ImportRef, ImportRef], *, config: Path, package: Path, deploy: Path, roots: Sequence[str]
) -> Layout:
    """The layout of the image built with the config's directory as its context."""
    context = config.absolute().parent
    copies, installed = [], []
    for module in top_level_modules(service):
        found = _find(module, roots)
        if found is None:
            installed.append(module)
        else:
            slash = "/" if found.is_dir() else ""
            source = _inside(context, found, f"module {module} ({found})")
            copies.append(Copy(source=source + slash, target=found.name + slash))
    package_source = _inside(context, package.absolute(), f"the generated package {package}")
    return Layout(
        package=Copy(source=package_source + "/", target=package.absolute().name + "/"),
        modules=tuple(copies),
        installed=tuple(installed),
        deploy=_posix(os.path.relpath(deploy.absolute(), context)),
    )


def top_level_modules(service: Service[ImportRef, ImportRef]) -> list[str]:
    """The first part of every module the config imports, sorted."""
    refs = [entry.consumer for entry in service.consumers]
    if service.startup_handler is not None:
        refs.append(service.startup_handler)
    return sorted({ref.module.split(".")[0] for ref in refs})


def _find(module: str, roots: Sequence[str]) -> Path | None:
    for root in roots:
        folder, file = Path(root, module), Path(root, f"{module}.py")
        if folder.is_dir():
            return folder.absolute()
        if file.is_file():
            return file.absolute()
    return None


def _inside(context: Path, path: Path, what: str) -> str:
    """`path` relative to the context, in `/` form."""
    relative = os.path.relpath(path, context)
    if relative == os.curdir or relative.split(os.sep)[0] == os.pardir:
        raise LayoutError(
            f"--deploy: {what} is outside the image's build context, the config's directory {context}; "
            "move it under that directory, or build the package and the image from there"
        )
    return _posix(relative)


def _posix(relative: str) -> str:
    return str(PurePosixPath(*Path(relative).parts))
