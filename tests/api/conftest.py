"""API-level tests: the real `kubernetes` client over HTTP against kmock's fake API server
(pytest plugin `kmock`, one server per test). The controller's blocking client runs in a worker
thread while kmock serves on the test's event loop."""
