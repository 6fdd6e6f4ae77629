#!/usr/bin/env bash
# Installs everything, then runs the demo: apply the example catalog, generate a month of
# events (with bad lines and duplicates), ingest them, draft October 2026 as a Prefect flow
# run, finalize it (numbers, issue dates, files written once, e-mails written as .eml files
# by the file outbox), and list the documents and their messages.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh

export PREFECT_HOME="${PREFECT_HOME:-$PWD/.prefect}"
export PREFECT_SERVER_ANALYTICS_ENABLED=false
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="${PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS:-120}"
export PREFECT_LOGGING_LEVEL="${PREFECT_LOGGING_LEVEL:-WARNING}"
EVENTS="${DEMO_EVENTS:-300000}"
# Delivery for trials: the e-mails are written as .eml files beside the PDFs.
export BILLING_MAIL_URL="${BILLING_MAIL_URL:-file://$PWD/invoices/outbox}"
billing=.venv/bin/billing

echo "== 1. catalog"
$billing catalog apply examples/catalog.yaml
echo "== 2. generate ${EVENTS} events for October 2026"
.venv/bin/python examples/generate_events.py --period 2026-10 --events "$EVENTS" --out examples/data
echo "== 3. ingest"
$billing ingest examples/data
echo "== 4. draft 2026-10 (a Prefect flow run: drafts, no numbers yet)"
$billing run --period 2026-10 --out invoices
echo "== 5. a prepaid credit for Initech (applied before tax when October is issued)"
$billing credits grant --customer cus_initech --amount 150.00 --currency USD --priority 10 \
  --reason "Prepaid API pack" --reference demo-prepaid-1
echo "== 6. finalize 2026-10 (a Prefect flow run: numbers, issue and due dates, e-mails)"
$billing invoices finalize --period 2026-10 --out invoices
echo "== 7. the documents, their e-mails, and the credit ledgers"
$billing invoices list --period 2026-10
$billing outbox list
$billing credits ledger --customer cus_initech
$billing credits ledger --customer cus_hooli
echo
echo "Invoices (PDF, HTML, JSON): $PWD/invoices/2026-10/"
ls invoices/2026-10/*.pdf
echo "Their e-mails (.eml, as sent): $PWD/invoices/outbox/"
ls invoices/outbox/
