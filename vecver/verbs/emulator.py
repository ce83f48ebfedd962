"""Verbs of this area (placeholder until its engineer fills it in)."""

from __future__ import annotations

from typing import Any

RENDERERS: dict[str, Any] = {}
