"""Every SQL statement of the product (procrastinate's one-manager rule)."""
