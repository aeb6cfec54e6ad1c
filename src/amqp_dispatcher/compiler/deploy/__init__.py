"""Deployment files: a Dockerfile, a systemd unit and Kubernetes manifests, from the config.

Owns which files `dispatcher-build --deploy DIR` writes into DIR, each a pure function of the
service, the config file's name, the package's name and the generator version (and, for the
Dockerfile, where the package and the modules sit in the build context), so that they never
drift from the config: `--check` compares them like the package. The modules beside this one
each own one file (dockerfile.py, systemd.py, kubernetes.py) or what they share (names.py,
layout.py, text.py). Knows nothing of writing files (output.py does).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from amqp_dispatcher.runtime.spec import Service

from ..pipeline import base_name
from ..refs import ImportRef
from . import dockerfile, kubernetes, systemd
from .layout import Layout, LayoutError, resolve
from .text import MARK

__all__ = ["MARK", "Layout", "LayoutError", "build", "overlaps", "render", "resolve"]


def build(
    service: Service[ImportRef, ImportRef], *, config: Path, package: Path, target: Path, roots: Sequence[str]
) -> dict[str, str]:
    """Every deployment file of `config` built into the package folder `package`, to be written
    into `target`, with the modules found in `roots`; raises LayoutError."""
    layout = resolve(service, config=config, package=package, deploy=target, roots=roots)
    return render(service, layout, config_name=base_name(str(config)), package=package.absolute().name)


def overlaps(target: Path, package: Path) -> bool:
    """Whether the deploy folder is the package folder, or one holds the other: each is replaced whole."""
    first, second = target.absolute(), package.absolute()
    return first == second or first.is_relative_to(second) or second.is_relative_to(first)


def render(service: Service[ImportRef, ImportRef], layout: Layout, *, config_name: str, package: str) -> dict[str, str]:
    """File name -> text, for every deployment file."""
    return {
        dockerfile.FILE: dockerfile.render(service, layout, config_name=config_name, package=package),
        systemd.file_name(service): systemd.render(service, config_name=config_name, package=package),
        kubernetes.FILE: kubernetes.render(service, config_name=config_name),
    }
