"""The consistency check's I/O, in the spirit of pt-table-checksum (docs/sidecar.md,
"Consistency check"); its statements and logic are pure, in `core/consistency.py`.

- `checksum_pass`: one pass over every user table, on the primary;
- `reader`: what a server's checksum table says (its summary, its pass record);
- `on_demand`: a pass now, then every pod's result once it applied the pass;
- `command`: `mysqlsts checksum`, that on demand, in the primary's sidecar container.

The primary's sidecar runs a pass on its schedule and every sidecar reads its own summary
(`sidecar/consistency.py`); `mysqlsts local checksum` runs `on_demand` on a local set.
"""
