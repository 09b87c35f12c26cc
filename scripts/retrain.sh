#!/usr/bin/env bash
# One scheduled run on this machine, for cron or a systemd timer (README "Scheduled retraining"):
#
#   scripts/retrain.sh [PIPELINE] [kedro run options...]     # PIPELINE: retrain (default), monitor or paper
#
# Runs `kedro run --pipeline=PIPELINE` from the project folder (the parent of this script, wherever
# it is called from), with the kedro of $QUANT_ARENA_VENV (the project's venv) or else the one on
# PATH; KEDRO_ENV and MLFLOW_TRACKING_URI are read as by any kedro run. Runs of the same pipeline
# never overlap: a run started while another still holds data/.PIPELINE.lock exits at once with
# code 75 and a message (the registry's promotion lock is the second guard). Exit code: kedro's.
set -euo pipefail
cd "$(dirname "$0")/.."
pipeline=retrain
if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then
  pipeline=$1
  shift
fi
kedro=${QUANT_ARENA_VENV:+$QUANT_ARENA_VENV/bin/}kedro
mkdir -p data
exec 9> "data/.$pipeline.lock"
if ! flock --nonblock 9; then
  echo "$(date -u +%FT%TZ) scripts/retrain.sh: another '$pipeline' run holds $PWD/data/.$pipeline.lock; not starting" >&2
  exit 75
fi
echo "$(date -u +%FT%TZ) scripts/retrain.sh: kedro run --pipeline=$pipeline $* (in $PWD, env ${KEDRO_ENV:-local})"
"$kedro" run --pipeline="$pipeline" "$@"
