#!/usr/bin/env bash
# Run a command with the services the integration tests need, and leave the machine as found:
# PostgreSQL is started only if it was not running, and stopped again afterwards in that case.
# Mosquitto brokers are started by the tests themselves on free loopback ports.
set -uo pipefail
started_pg=""
pg_up() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }
if ! pg_up && command -v pg_ctlcluster >/dev/null; then
  ver=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n1)
  if [ -n "$ver" ]; then
    echo "starting PostgreSQL $ver for the tests" >&2
    pg_ctlcluster --skip-systemctl-redirect "$ver" main start && started_pg="$ver"
    for _ in $(seq 1 30); do pg_up && break; sleep 0.5; done
  fi
fi
if pg_up && [ -z "${CAMWARDEN_TEST_PG:-}" ]; then
  # a throwaway database per run; dropped at exit
  db="camwarden_test_$$"
  if su postgres -c "createdb -h 127.0.0.1 $db" 2>/dev/null || createdb -h 127.0.0.1 -U postgres "$db" 2>/dev/null; then
    export CAMWARDEN_TEST_PG="postgresql+psycopg://postgres@127.0.0.1:5432/$db"
    dropdb_cmd="dropdb -h 127.0.0.1 -U postgres --if-exists $db"
  fi
fi
"$@"; rc=$?
[ -n "${dropdb_cmd:-}" ] && $dropdb_cmd 2>/dev/null
[ -n "$started_pg" ] && pg_ctlcluster --skip-systemctl-redirect "$started_pg" main stop
exit $rc
