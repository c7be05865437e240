"""Timedify's benchmarks: `python -m bench [scenario ...]` or `make bench` (SPEC §6, W5).

Everything runs on 127.0.0.1 and is started here: a raw-ASGI baseline served by the same uvicorn
options as `timedify serve`, the service itself on SQLite and on a throwaway PostgreSQL server,
and `wrk` as the load generator. Every throughput figure is also given as a ratio to the
baseline measured in the same run, because only a same-run ratio survives a shared machine.
"""
