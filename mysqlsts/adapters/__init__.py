"""Thin I/O wrappers: database, DNS, files, Kubernetes."""
