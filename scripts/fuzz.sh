#!/usr/bin/env bash
# Runs every fuzz target of the module for FUZZTIME each (go test -fuzz
# takes one target at a time) and prints each target's exec rate.
#
# `go test -fuzz` sometimes ends a clean run with "context deadline
# exceeded" when -fuzztime expires while a worker is still minimising a new
# coverage input (golang/go#56238, #48820): no input failed, so no failing
# input is written. That case counts as a clean run; any other failure,
# and any run that writes a failing input, fails.
set -uo pipefail
fuzztime=${FUZZTIME:-30s}
go=${GO:-go}
status=0
for pkg in $($go list ./...); do
  for t in $($go test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true); do
    out=$($go test -run '^$' -fuzz "^$t\$" -fuzztime "$fuzztime" -fuzzminimizetime 1s "$pkg" 2>&1)
    rc=$?
    rate=$(printf '%s\n' "$out" | grep -oE 'execs: [0-9]+' | tail -1 | grep -oE '[0-9]+')
    if [ $rc -ne 0 ]; then
      if printf '%s\n' "$out" | grep -q 'context deadline exceeded' && ! printf '%s\n' "$out" | grep -q 'Failing input written'; then
        printf '%-44s %-24s %10s execs in %s (stopped while minimising; no failure)\n' "${pkg#github.com/latchnvr/latch/}" "$t" "${rate:-0}" "$fuzztime"
        continue
      fi
      printf '%s\n' "$out"
      echo "FAIL: $pkg $t" >&2
      status=1
      continue
    fi
    printf '%-44s %-24s %10s execs in %s\n' "${pkg#github.com/latchnvr/latch/}" "$t" "${rate:-0}" "$fuzztime"
  done
done
exit $status
