"""Pure logic: no I/O, no clock, no environment. Decisions take plain values."""
