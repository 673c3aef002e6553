"""Backups to an object store: listing today; taking, restoring and verifying next (#17)."""
