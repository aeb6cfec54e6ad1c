"""Shared test setup: where things are, and the real broker for the tests that need one."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
