#!/bin/sh
# `make screenshots`: the dashboard's main views as PNGs in $1, taken by the browser test's own
# script (drive_dashboard.py --screenshots) on a fresh `ticketlog demo` log served on loopback.
set -eu
out=$1
mkdir -p "$out"
work=$(mktemp -d)
secret=screenshots-secret-of-at-least-32-bytes-long
trap 'kill $server 2>/dev/null || true; rm -rf "$work"' EXIT
"$TICKETLOG" demo --database "$work/demo.sqlite" >/dev/null
port=$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
TICKETLOG_AUTH_SECRET=$secret "$TICKETLOG" serve --database "$work/demo.sqlite" --port "$port" --no-sync \
  --log-level warning 2>"$work/server.log" &
server=$!
for _ in $(seq 100); do
  curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break
  sleep 0.1
done
token() { TICKETLOG_AUTH_SECRET=$secret "$TICKETLOG" token --subject "$1" --role "$2"; }
tokens=$(printf '{"admin":"%s","agent":"%s","creator":"%s","owner":"%s","stranger":"%s"}' \
  "$(token ada admin)" "$(token sam agent)" "$(token kim creator)" "$(token jo creator)" "$(token lee agent)")
"$PYTHON" "$(dirname "$0")/drive_dashboard.py" "http://127.0.0.1:$port" "$tokens" --screenshots "$out" --no-evidence
echo "screenshots in $out"
