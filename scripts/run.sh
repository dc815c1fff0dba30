#!/usr/bin/env bash
# Runs the whole system locally on loopback, on the embedded defaults:
#   RabbitMQ (started if installed but down), SecantusDB (embedded MongoDB-compatible server),
#   the sandbox emulators of SweetClub, Eduzz and Yandex OFD, the four services, then a demo
#   that creates a token, uploads a workbook with Russian headers, syncs the sandbox APIs into
#   the report, and prints it. Stays up until Ctrl-C (or exits after the demo with --no-wait).
set -euo pipefail
cd "$(dirname "$0")/.."
WAIT=1
[[ "${1:-}" == "--no-wait" ]] && WAIT=0

bash scripts/bootstrap.sh
bash scripts/ensure-rabbitmq.sh

RUN=.run
mkdir -p "$RUN/logs" "$RUN/mongo"
export SALESWIRE_MONGO_URL=${SALESWIRE_MONGO_URL:-mongodb://127.0.0.1:27017/?directConnection=true}
export SALESWIRE_NAMESPACE=${SALESWIRE_NAMESPACE:-saleswire}
PIDS=()
cleanup() {
  echo "stopping..." >&2
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
start() {  # start NAME COMMAND...
  local name=$1; shift
  "$@" >>"$RUN/logs/$name.log" 2>&1 &
  PIDS+=($!)
  echo "started $name (pid $!, log $RUN/logs/$name.log)" >&2
}
wait_http() {  # wait_http NAME URL
  for _ in $(seq 1 240); do
    if .venv/bin/python -c "import httpx,sys; sys.exit(httpx.get('$2', timeout=2).status_code != 200)" 2>/dev/null; then
      return 0
    fi
    sleep 0.5
  done
  echo "$1 did not become ready; see $RUN/logs/$1.log" >&2
  tail -n 30 "$RUN/logs/$1.log" >&2 || true
  exit 1
}

if port_open 27017; then
  echo "a MongoDB-compatible server already answers on 27017; using it" >&2
else
  start mongo .venv-secantus/bin/secantusd-py --host 127.0.0.1 --port 27017 --storage-path "$RUN/mongo" --log-level WARNING
  for _ in $(seq 1 120); do port_open 27017 && break; sleep 0.5; done
fi

start sandbox .venv/bin/python -m deploy.sandbox --sweetclub 9101 --eduzz 9102 --ofd 9103
for svc in gateway:8000 ingest:8001 analytics:8002 connectors:8003; do
  name=${svc%%:*}; port=${svc##*:}
  start "$name" .venv/bin/uvicorn "services.$name.main:app" --host 127.0.0.1 --port "$port" --no-access-log
done
for svc in gateway:8000 ingest:8001 analytics:8002 connectors:8003; do
  wait_http "${svc%%:*}" "http://127.0.0.1:${svc##*:}/ready"
done

.venv/bin/python -m deploy.demo --gateway http://127.0.0.1:8000 \
  --sweetclub http://127.0.0.1:9101 --eduzz http://127.0.0.1:9102 --ofd http://127.0.0.1:9103

cat >&2 <<MSG

Saleswire is running:
  API + OpenAPI   http://127.0.0.1:8000/docs      metrics  http://127.0.0.1:800{0,1,2,3}/metrics
  web page        http://127.0.0.1:8000/app       (sign in with the token below)
  AsyncAPI        http://127.0.0.1:8001/asyncapi  (ingest), :8002 (analytics), :8003 (connectors)
  token           $(cat "$RUN/demo-token" 2>/dev/null)
Logs are in $RUN/logs. Ctrl-C stops everything.
MSG
if [[ $WAIT == 1 ]]; then wait; fi
