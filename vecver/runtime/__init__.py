"""Executing against live databases: the workspace, the write path, sources."""
