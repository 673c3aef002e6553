#!/bin/sh
# mysqlsts-server's entrypoint: initialise an empty data dir with the root password from the
# Secret (mysql-0's first start; a replica's data dir holds its clone by now), then become the
# server, so SIGTERM from the kubelet reaches mariadbd itself. Arguments go to mariadbd.
set -eu
mysqlsts bootstrap
exec mariadbd "$@"
