"""The operations toolkit: one module per command of `timedify` (SPEC O)."""
