#!/usr/bin/env bash
# The test command: builds the environments from the lock files, makes sure RabbitMQ runs,
# lints and type-checks, then runs every test suite (unit, integration, e2e, ops) against the
# real broker and a real SecantusDB process. Extra arguments go to pytest.
# Long variants (1 M-row files, ≥20 kill cycles, 50 000 sales per platform): SALESWIRE_LONG_TESTS=1.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
bash scripts/ensure-rabbitmq.sh
bash scripts/ensure-prometheus.sh
bash scripts/ensure-chromium.sh
echo "== ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "== mypy" && .venv/bin/mypy $(ls -d shared services cli deploy bench tests 2>/dev/null)
echo "== pytest" && .venv/bin/pytest -p no:cacheprovider "$@"
