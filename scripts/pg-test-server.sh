#!/usr/bin/env bash
# A throwaway PostgreSQL server for the study store's tests (test/tune/store.test.ts).
#
#   scripts/pg-test-server.sh start [DIR]   prints the URL to export as SVHN_TEST_POSTGRES_URL
#   scripts/pg-test-server.sh stop [DIR]    stops the server and removes DIR
#
# DIR (default $TMPDIR/svhn-pg-test) holds the cluster, its socket and its log. The server
# listens on 127.0.0.1 only, on a free port, with one user `svhn` (a random password, in the
# URL) and a database `svhn_test`. initdb refuses to run as root: as root, the server runs as
# the `postgres` user (Debian's postgresql package creates it), else as `nobody`. Needs the
# server binaries (Debian: apt-get install postgresql); exits non-zero, saying why, when it
# cannot start.
set -euo pipefail

action="${1:-}"
dir="${2:-${TMPDIR:-/tmp}/svhn-pg-test}"
user=svhn
password="$(od -An -tx1 -N8 /dev/urandom | tr -d ' \n')" # throwaway: a new one each start
database=svhn_test

die() { echo "pg-test-server: $*" >&2; exit 1; }

bindir() {
  local d
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    [ -x "$d/initdb" ] && { echo "$d"; return; }
  done
  command -v pg_config >/dev/null 2>&1 && [ -x "$(pg_config --bindir)/initdb" ] && { pg_config --bindir; return; }
  command -v initdb >/dev/null 2>&1 && { dirname "$(command -v initdb)"; return; }
  return 1
}

# Runs a command as the server's owner: ourselves, or (as root) postgres / nobody.
owner=""
if [ "$(id -u)" = 0 ]; then
  if id postgres >/dev/null 2>&1; then owner=postgres; else owner=nobody; fi
fi
as_owner() {
  if [ -n "$owner" ]; then runuser -u "$owner" -- "$@"; else "$@"; fi
}

case "$action" in
  start)
    bin="$(bindir)" || die "no PostgreSQL server binaries (initdb) found; Debian: apt-get install postgresql"
    [ -e "$dir/data/postmaster.pid" ] && die "a server already runs in $dir (stop it first: $0 stop $dir)"
    rm -rf "$dir"
    mkdir -p "$dir"
    chmod 700 "$dir"
    [ -n "$owner" ] && chown "$owner" "$dir"
    port="$(node -e 'const s = require("net").createServer().listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); })')"
    printf '%s\n' "$password" > "$dir/pwfile"
    [ -n "$owner" ] && chown "$owner" "$dir/pwfile"
    # Local socket: trust (createdb below); TCP: the password, as a real server would ask.
    as_owner "$bin/initdb" -D "$dir/data" -U "$user" --pwfile="$dir/pwfile" --auth-local=trust --auth-host=scram-sha-256 \
      --encoding=UTF8 --locale=C >"$dir/initdb.log" 2>&1 || { rm -f "$dir/pwfile"; die "initdb failed: $(tail -n 3 "$dir/initdb.log")"; }
    rm -f "$dir/pwfile"
    as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 \
      -o "-k $dir -p $port -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=50" start >/dev/null \
      || die "the server did not start: $(tail -n 3 "$dir/server.log" 2>/dev/null)"
    as_owner "$bin/createdb" -h "$dir" -p "$port" -U "$user" "$database" || die "createdb failed"
    echo "$port" > "$dir/port"
    echo "postgresql://$user:$password@127.0.0.1:$port/$database"
    ;;
  stop)
    [ -d "$dir" ] || exit 0
    if [ -e "$dir/data/postmaster.pid" ]; then
      bin="$(bindir)" || die "no PostgreSQL server binaries (pg_ctl) found"
      as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null || echo "pg-test-server: pg_ctl stop failed" >&2
    fi
    rm -rf "$dir"
    ;;
  *)
    echo "usage: $0 start|stop [DIR]" >&2
    exit 2
    ;;
esac
