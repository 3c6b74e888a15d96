#!/usr/bin/env bash
# A throw-away PostgreSQL cluster for the fleet tests (SPEC section 11).
#
#   scripts/pg.sh install        # PostgreSQL from the system's packages when initdb is missing (root)
#   scripts/pg.sh start DIR      # initdb + pg_ctl start in DIR; prints the DSN; DIR/dsn holds it
#   scripts/pg.sh stop DIR       # pg_ctl stop, then DIR is removed
#   scripts/pg.sh halt DIR       # pg_ctl stop, keeping DIR (the database "goes away")
#   scripts/pg.sh resume DIR     # starts a halted cluster again on the same port
#
# The cluster listens on 127.0.0.1 on a free port (and a socket inside DIR),
# trust authentication, user postgres, database postgres. The server never
# runs as root: under root it runs as the system user `shopauth-pg` (made on
# first use). Nothing outside DIR is touched, and the machine's own
# PostgreSQL (if any) is never used.
set -euo pipefail

find_bin() {
  local name="$1" d
  if command -v "$name" >/dev/null 2>&1 && "$name" --version >/dev/null 2>&1; then
    command -v "$name"; return 0
  fi
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    if [ -x "$d/$name" ]; then echo "$d/$name"; return 0; fi
  done
  return 1
}

as_server() {
  if [ "$(id -u)" = 0 ]; then runuser -u shopauth-pg -- "$@"; else "$@"; fi
}

case "${1:-}" in
  install)
    if find_bin initdb >/dev/null && find_bin pg_ctl >/dev/null; then exit 0; fi
    if [ "$(id -u)" != 0 ]; then
      echo "pg.sh: PostgreSQL (initdb, pg_ctl) is missing; install the postgresql package" >&2; exit 1
    fi
    apt-get update -qq
    # The distribution's server package; its own cluster is not started here.
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >/dev/null
    find_bin initdb >/dev/null
    ;;
  start)
    dir="${2:?usage: pg.sh start DIR}"
    initdb="$(find_bin initdb)"; pg_ctl="$(find_bin pg_ctl)"
    mkdir -p "$dir"
    if [ "$(id -u)" = 0 ]; then
      id shopauth-pg >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin shopauth-pg
      chown shopauth-pg "$dir"
    fi
    port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
    as_server "$initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --no-sync >"$dir/initdb.log" 2>&1
    echo "$port" >"$dir/port"
    "$0" resume "$dir"
    dsn="postgresql://postgres@127.0.0.1:$port/postgres"
    echo "$dsn" >"$dir/dsn"
    echo "$dsn"
    ;;
  resume)
    dir="${2:?usage: pg.sh resume DIR}"
    pg_ctl="$(find_bin pg_ctl)"; port="$(cat "$dir/port")"
    # fsync off: a throw-away cluster whose own crash is not under test (the
    # host processes are killed, never the database).
    as_server "$pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start \
      -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200" >/dev/null
    ;;
  halt)
    dir="${2:?usage: pg.sh halt DIR}"
    pg_ctl="$(find_bin pg_ctl)"
    as_server "$pg_ctl" -D "$dir/data" -m fast -w -t 30 stop >/dev/null
    ;;
  stop)
    dir="${2:?usage: pg.sh stop DIR}"
    if [ -d "$dir/data" ]; then
      pg_ctl="$(find_bin pg_ctl)"
      as_server "$pg_ctl" -D "$dir/data" -m immediate -w -t 30 stop >/dev/null 2>&1 || true
    fi
    rm -rf "$dir"
    ;;
  *)
    echo "usage: pg.sh install | start DIR | stop DIR | halt DIR | resume DIR" >&2; exit 2 ;;
esac
