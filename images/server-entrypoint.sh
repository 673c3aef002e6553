#!/bin/sh
# mysqlsts-server's entrypoint: `mysqlsts server` initialises an empty data dir with the root
# password from the Secret (mysql-0's first start; a replica's data dir holds its clone by now),
# then runs mariadbd as its child: it passes SIGTERM/SIGINT/SIGQUIT/SIGHUP on, exits with
# mariadbd's status, and stops mariadbd when the sidecar's heartbeat file goes stale (the
# watchdog, docs/takeover.md). exec: it is PID 1, so the kubelet's SIGTERM reaches it.
# Arguments go to mariadbd.
set -eu
exec mysqlsts server -- "$@"
