"""Emulated fc operations (registered with emulator.core)."""

from __future__ import annotations
