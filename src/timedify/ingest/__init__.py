"""The webhook endpoint, its bounds and the group committer (SPEC W)."""
