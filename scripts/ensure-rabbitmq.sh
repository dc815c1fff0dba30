#!/usr/bin/env bash
# Makes sure a RabbitMQ answers AMQP on 127.0.0.1:5672: starts the local one if it is installed but
# down. On CI (CI=true) it also resets a node that accepts connections but never answers the AMQP
# handshake (seen after many killed test runs had left their quorum queues behind), and deletes the
# queues that earlier, killed test runs left without consumers, so they do not pile up run after run.
set -euo pipefail
cd "$(dirname "$0")/.."
port_open() { (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null; }
amqp_answers() {
  # The protocol header; a live broker answers with a Connection.Start frame (frame type 1).
  [[ $(timeout 15 bash -c 'exec 3<>/dev/tcp/127.0.0.1/5672; printf "AMQP\x00\x00\x09\x01" >&3; head -c 1 <&3 | od -An -tx1' 2>/dev/null | tr -d ' ') == 01 ]]
}
wait_up() {
  for _ in $(seq 1 120); do
    if port_open && amqp_answers; then return 0; fi
    sleep 0.5
  done
  echo "ensure-rabbitmq: RabbitMQ did not come up within 60 s" >&2
  return 1
}
start_server() {
  if ! command -v rabbitmq-server >/dev/null 2>&1; then
    if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null 2>&1; then
      echo "ensure-rabbitmq: installing rabbitmq-server from Debian's packages" >&2
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rabbitmq-server >/dev/null
    else
      echo "ensure-rabbitmq: RabbitMQ is not running on 127.0.0.1:5672 and rabbitmq-server is not installed" >&2
      exit 1
    fi
  fi
  echo "ensure-rabbitmq: starting rabbitmq-server" >&2
  rabbitmq-server -detached >/dev/null 2>&1 || true
  wait_up
}

if ! port_open; then
  start_server
elif ! amqp_answers; then
  if [[ ${CI:-} == true && $(id -u) == 0 ]]; then
    echo "ensure-rabbitmq: the broker accepts connections but does not answer AMQP: resetting the local node" >&2
    pkill -9 -f beam.smp || true
    sleep 2
    rm -rf /var/lib/rabbitmq/mnesia/rabbit@localhost /var/lib/rabbitmq/mnesia/rabbit@localhost-* || true
    start_server
  else
    echo "ensure-rabbitmq: the broker at 127.0.0.1:5672 does not answer AMQP (a hung node?)" >&2
    exit 1
  fi
fi

if [[ ${CI:-} == true && -x .venv/bin/python ]]; then
  # Queues of test namespaces (test., e2e., rel.) with no consumer are what killed runs left behind;
  # a run in progress has its consumers attached.
  stale=$(timeout 60 rabbitmqctl list_queues name consumers --quiet --no-table-headers 2>/dev/null \
    | awk '$2 == 0 && $1 ~ /^(test|e2e|rel)[.]/ {print $1}' || true)
  if [[ -n $stale ]]; then
    echo "ensure-rabbitmq: deleting $(wc -l <<<"$stale") queues left by earlier test runs" >&2
    STALE="$stale" timeout 120 .venv/bin/python -c '
import asyncio, os
import aio_pika
async def main() -> None:
    connection = await aio_pika.connect("amqp://guest:guest@127.0.0.1:5672/")
    async with connection:
        channel = await connection.channel()
        for name in os.environ["STALE"].split():
            await channel.queue_delete(name)
asyncio.run(main())
' || echo "ensure-rabbitmq: could not delete every stale queue (ignored)" >&2
  fi
fi
