"""Deployment names: the one name every deployment file gives the service, derived from the config.

Owns how the config's `name` (any non-empty string) becomes a name that Kubernetes objects,
label values, a systemd unit and a container can all carry: a DNS-1123 label that starts
with a letter, at most 63 characters, and, cut shorter, the Linux user the unit runs as.
The derivation is deterministic and never refuses a name: `orders-service` stays as it is,
`Orders_Service.v2` becomes `orders-service-v2`. Knows nothing of the files that use them.
"""

from __future__ import annotations

import hashlib
import re

MAX_LABEL = 63  # a DNS-1123 label, and a Kubernetes label value
MAX_USER = 31  # systemd's User= refuses longer names (a utmp entry holds 32 bytes, one a NUL)
_OTHER = re.compile(r"[^a-z0-9]+")
_DIGEST = 8  # hex digits of the name's sha256 that keep a shortened name distinct
_PREFIX = "svc-"  # in front of a name that would start with a digit, or of nothing at all


def deploy_name(name: str) -> str:
    """The config's name as a DNS-1123 label that starts with a letter."""
    label = _OTHER.sub("-", name.lower()).strip("-")
    if not label:
        label = _PREFIX + _digest(name)
    elif not label[0].isalpha():
        label = _PREFIX + label
    return _shorten(label, name, MAX_LABEL)


def user_name(name: str) -> str:
    """The Linux user the systemd unit runs as: the deploy name, shortened to what systemd takes."""
    return _shorten(deploy_name(name), name, MAX_USER)


def secret_name(name: str) -> str:
    """The Secret (and TriggerAuthentication) that holds the broker's URLs."""
    return f"{deploy_name(name)}-rabbitmq"


def _shorten(label: str, name: str, limit: int) -> str:
    """`label` if it fits; else its start, a dash and a digest of the whole name."""
    if len(label) <= limit:
        return label
    head = label[: limit - _DIGEST - 1].rstrip("-")
    return f"{head}-{_digest(name)}"


def _digest(name: str) -> str:
    return hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:_DIGEST]
