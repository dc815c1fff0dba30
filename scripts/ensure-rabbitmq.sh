#!/usr/bin/env bash
# Makes sure a RabbitMQ answers on 127.0.0.1:5672: starts the local one if it is installed but down.
set -euo pipefail
port_open() { (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null; }
if port_open; then exit 0; fi
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
for _ in $(seq 1 120); do
  if port_open; then sleep 2; exit 0; fi
  sleep 0.5
done
echo "ensure-rabbitmq: RabbitMQ did not come up within 60 s" >&2
exit 1
