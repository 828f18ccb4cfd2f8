#!/usr/bin/env bash
# A throw-away PostgreSQL cluster for the tests and the bench (issue 19).
#
#   cluster.sh start DIR   initdb into DIR/data, start on a free loopback port, print the URL
#                          (also written to DIR/url): postgres://ticketlog:PASSWORD@127.0.0.1:PORT/postgres
#                          TLS is offered with a self-signed certificate, DIR/server.crt
#                          (?sslmode=verify-full&sslrootcert=DIR/server.crt, host localhost)
#   cluster.sh stop DIR    stop it (fast shutdown) and leave DIR for the caller to remove
#   cluster.sh restart DIR stop and start again on the same port (the tests' "PostgreSQL restarted")
#   cluster.sh resume DIR  start a stopped cluster again on the same port
#   cluster.sh createdb DIR NAME
#                          create an empty database NAME in the running cluster, print its URL
#   cluster.sh run -- CMD  start one in a temporary directory, run CMD with TICKETLOG_POSTGRES_URL
#                          set, stop it and remove the directory whatever CMD does
#
# PostgreSQL refuses to run as root, and CI runs as root: then the server runs as `nobody`
# (setpriv), which owns DIR. Password authentication (SCRAM) on TCP only: the tests connect the way
# a deployment does, and a wrong password is refused for real. The server binaries come from
# Debian's `postgresql` package (the Makefile installs it when missing).
set -euo pipefail

die() { echo "cluster.sh: $*" >&2; exit 1; }

bindir() {
    local dir
    dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
    [ -n "$dir" ] && [ -x "$dir/initdb" ] || die "no PostgreSQL server found under /usr/lib/postgresql (apt-get install postgresql)"
    echo "$dir"
}

# Runs a server binary as the cluster's owner: `nobody` when we are root, else ourselves.
as_owner() {
    if [ "$(id -u)" = 0 ]; then
        setpriv --reuid=nobody --regid=nogroup --clear-groups -- "$@"
    else
        "$@"
    fi
}

close_inherited_descriptors() {
    local fd
    for fd in /proc/$BASHPID/fd/*; do
        fd=${fd##*/}
        [ "$fd" -gt 2 ] 2>/dev/null && eval "exec $fd>&-" 2>/dev/null || true
    done
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

start_server() {
    local dir=$1 port=$2 bin
    bin=$(bindir)
    # The server outlives this script: it must not inherit the caller's descriptors beyond
    # 0-2 (a parent waiting for EOF on a pipe, or for a termination socket, would wait forever).
    close_inherited_descriptors
    as_owner "$bin/pg_ctl" start -w -t 60 -D "$dir/data" -l "$dir/server.log" \
        -o "-c listen_addresses=127.0.0.1 -p $port -c unix_socket_directories=$dir/socket -c max_connections=300 -c ssl=on" \
        >/dev/null || { tail -20 "$dir/server.log" >&2; die "the server did not start (log above)"; }
}

start() {
    local dir=$1 bin password port
    bin=$(bindir)
    mkdir -p "$dir/socket"
    [ ! -e "$dir/data" ] || die "$dir/data exists: one cluster per directory"
    password=$(head -c 24 /dev/urandom | base64 | tr -dc 'A-Za-z0-9')
    printf '%s\n' "$password" >"$dir/password"
    if [ "$(id -u)" = 0 ]; then chown -R nobody:nogroup "$dir"; fi
    chmod 700 "$dir"
    as_owner "$bin/initdb" -D "$dir/data" -U ticketlog --pwfile="$dir/password" \
        --auth-local=scram-sha-256 --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
        || { cat "$dir/initdb.log" >&2; die "initdb failed"; }
    # TLS offered (clients choose with sslmode): a self-signed certificate for localhost and
    # 127.0.0.1, which is also its own authority — DIR/server.crt is what sslrootcert names.
    as_owner openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 \
        -subj "/CN=localhost" -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
        -keyout "$dir/data/server.key" -out "$dir/data/server.crt" >"$dir/openssl.log" 2>&1 \
        || { cat "$dir/openssl.log" >&2; die "openssl could not make the server's certificate"; }
    cp "$dir/data/server.crt" "$dir/server.crt"
    # A port taken between choosing and binding: try a few.
    for _ in 1 2 3 4 5; do
        port=$(free_port)
        echo "$port" >"$dir/port"
        if start_server "$dir" "$port" 2>/dev/null; then
            echo "postgres://ticketlog:$password@127.0.0.1:$port/postgres" >"$dir/url"
            cat "$dir/url"
            return 0
        fi
    done
    tail -20 "$dir/server.log" >&2
    die "the server did not start on any of five ports"
}

stop() {
    local dir=$1
    [ -d "$dir/data" ] || return 0
    as_owner "$(bindir)/pg_ctl" stop -w -t 60 -m fast -D "$dir/data" >/dev/null 2>&1 || true
}

createdb() {
    local dir=$1 name=$2 password port
    case "$name" in *[!a-z0-9_]* | "") die "database names here are lower-case letters, digits and _" ;; esac
    password=$(cat "$dir/password")
    port=$(cat "$dir/port")
    PGPASSWORD=$password "$(bindir)/createdb" -h 127.0.0.1 -p "$port" -U ticketlog "$name" \
        || die "could not create the database $name"
    echo "postgres://ticketlog:$password@127.0.0.1:$port/$name"
}

case "${1:-}" in
    createdb) [ $# = 3 ] || die "usage: cluster.sh createdb DIR NAME"; createdb "$2" "$3" ;;
    start) [ $# = 2 ] || die "usage: cluster.sh start DIR"; start "$2" ;;
    stop) [ $# = 2 ] || die "usage: cluster.sh stop DIR"; stop "$2" ;;
    restart)
        [ $# = 2 ] || die "usage: cluster.sh restart DIR"
        stop "$2"
        start_server "$2" "$(cat "$2/port")"
        ;;
    resume) [ $# = 2 ] || die "usage: cluster.sh resume DIR"; start_server "$2" "$(cat "$2/port")" ;;
    run)
        shift
        [ "${1:-}" = "--" ] && shift
        [ $# -gt 0 ] || die "usage: cluster.sh run -- COMMAND..."
        dir=$(mktemp -d /tmp/ticketlog-pg.XXXXXX)
        trap 'stop "$dir"; rm -rf "$dir"' EXIT
        TICKETLOG_POSTGRES_URL=$(start "$dir")
        export TICKETLOG_POSTGRES_URL
        "$@"
        ;;
    *) die "usage: cluster.sh start DIR | stop DIR | restart DIR | resume DIR | createdb DIR NAME | run -- COMMAND..." ;;
esac
