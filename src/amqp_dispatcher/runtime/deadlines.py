"""How long stopping may take: the one derivation, for the runtime and the deployment files.

Owns the margins around `shutdown_timeout`. After its drain (at most shutdown_timeout), a
process closes the publishing connection (up to PUBLISHER_CLOSE seconds) and the consuming one
(up to CONSUMER_CLOSE); a parent of several worker processes waits for them that long plus
PARENT_MARGIN before it kills what is left; an orchestrator (systemd's TimeoutStopSec,
Kubernetes' terminationGracePeriodSeconds) must wait longer still, or it kills the service
while it is still finishing messages.
"""

from __future__ import annotations

import math

PUBLISHER_CLOSE = 5.0
CONSUMER_CLOSE = 10.0
PARENT_MARGIN = 5.0
ORCHESTRATOR_MARGIN = 5.0


def process_deadline(shutdown_timeout: float) -> float:
    """Seconds from the first SIGTERM until one service process has exited, at most."""
    return shutdown_timeout + PUBLISHER_CLOSE + CONSUMER_CLOSE


def parent_deadline(shutdown_timeout: float) -> float:
    """Seconds a parent of several workers waits for them before it kills the rest (SIGKILL)."""
    return process_deadline(shutdown_timeout) + PARENT_MARGIN


def grace_period(shutdown_timeout: float) -> int:
    """Whole seconds an orchestrator should allow between SIGTERM and SIGKILL."""
    return math.ceil(parent_deadline(shutdown_timeout) + ORCHESTRATOR_MARGIN)
