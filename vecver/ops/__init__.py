"""The migration verbs over an open workspace, one module each: :mod:`.plan`,
:mod:`.backfill` (and migrate), :mod:`.verify`, :mod:`.evaluate`, :mod:`.cutover` (and
rollback). Backend-agnostic: they use only the backend protocol.

The verbs are re-exported by :mod:`vecver`; this package exports modules only, so that a
verb never shadows the module of the same name."""
