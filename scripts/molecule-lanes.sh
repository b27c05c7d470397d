#!/usr/bin/env bash
# Every Molecule scenario, in two lanes side by side (each scenario has its own containers,
# ports and network): on two cores the suite takes about two thirds of the time one scenario
# after another does. Each scenario's output goes to .reports/molecule-<scenario>.log and is
# printed when it ends; the exit status is non-zero if any scenario failed.
#   scripts/molecule-lanes.sh "default" "release supervisor cluster"
set -uo pipefail
cd "$(dirname "$0")/.."
mkdir -p .reports

lane() {
  local status=0 scenario
  for scenario in $1; do
    local started=$SECONDS
    if molecule test -s "$scenario" >".reports/molecule-$scenario.log" 2>&1; then
      echo "molecule $scenario: passed in $(( (SECONDS - started) / 60 )) min"
    else
      status=1
      echo "molecule $scenario: FAILED after $(( (SECONDS - started) / 60 )) min; its output:"
      cat ".reports/molecule-$scenario.log"
    fi
  done
  return $status
}

pids=()
for scenarios in "${@:-default release}" ; do
  lane "$scenarios" &
  pids+=($!)
done
status=0
for pid in "${pids[@]}"; do
  wait "$pid" || status=1
done
exit $status
