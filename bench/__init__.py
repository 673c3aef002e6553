"""The benchmarks (`make bench`): each prints its figures and, with --write-docs, rewrites its
block of docs/benchmarks.md. Run them as modules from the repository root
(`.venv/bin/python -m bench.clone_bench`); what they share is in bench/harness.py."""
