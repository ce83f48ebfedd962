"""The migration verbs: plan, backfill, verify, evaluate, cutover, rollback."""
