#!/usr/bin/env bash
# Run the server as a daemon under supervisord (supervisord.conf at the top level):
#   scripts/daemon.sh start     set up (first run only: runtime dependencies), then start
#                               supervisord + the server
#   scripts/daemon.sh stop      stop the server gracefully, then supervisord
#   scripts/daemon.sh restart   stop + start (re-reads .env and supervisord.conf)
#   scripts/daemon.sh status    the server's state and pid (exit 0 only when RUNNING)
#   scripts/daemon.sh logs      follow the server's console log
# Settings come from .env; variables exported when starting override it, e.g.
#   PORT=8080 scripts/daemon.sh start
set -euo pipefail
cd "$(dirname "$0")/.."

conf="$PWD/supervisord.conf"
program=copilot-cli-proxy
pidfile=logs/supervisord.pid

ctl() { .venv/bin/supervisorctl -c "$conf" "$@"; }
state() { ctl status "$program" 2>/dev/null | awk '{print $2}' || true; }

# supervisord is up when its pidfile names a live process (a stale file is ignored).
supervisord_pid() {
  local pid
  pid=$(cat "$pidfile" 2>/dev/null) || return 1
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

start() {
  ./scripts/setup.sh
  [ -f .env ] || cp .env.example .env
  mkdir -p logs
  if supervisord_pid >/dev/null; then
    ctl start "$program" >/dev/null || true
  else
    .venv/bin/supervisord -c "$conf"
  fi
  # RUNNING after startsecs (3 s). BACKOFF is a retry in progress; a server that cannot
  # start (bad .env) ends in FATAL after startretries.
  for _ in $(seq 1 150); do
    case "$(state)" in
      RUNNING | FATAL | EXITED) break ;;
    esac
    sleep 0.2
  done
  ctl status "$program" || true
  if [ "$(state)" != RUNNING ]; then
    echo "daemon: the server did not start; logs/server-console.log says why:" >&2
    tail -n 20 logs/server-console.log >&2 || true
    exit 1
  fi
}

stop() {
  local pid
  if ! pid=$(supervisord_pid); then
    echo "daemon: not running"
    return 0
  fi
  ctl stop "$program" || true # graceful: waits up to stopwaitsecs
  ctl shutdown >/dev/null || true
  for _ in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || { echo "daemon: stopped"; return 0; }
    sleep 0.1
  done
  echo "daemon: supervisord (pid $pid) is still running" >&2
  return 1
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  restart) stop && start ;;
  status)
    if ! supervisord_pid >/dev/null; then
      echo "daemon: not running"
      exit 3
    fi
    ctl status "$program" || true
    [ "$(state)" = RUNNING ]
    ;;
  logs) exec tail -n 50 -F logs/server-console.log ;;
  *)
    echo "usage: $0 start|stop|restart|status|logs" >&2
    exit 2
    ;;
esac
