#!/usr/bin/env bash
# fuzz.sh: runs every Go fuzz target of the module for a bounded number of
# executions each (FUZZTIME, default 50000x; at most 5 minutes a target), one
# after the other; fails on the first finding. A count, not a duration: Go
# 1.26's fuzz coordinator can fail a duration-bounded run with "context
# deadline exceeded" and no finding when the machine is busy (golang/go#75804,
# fixed in Go 1.27).
# A finding is written by Go under the package's testdata/fuzz/ directory:
# commit it with the fix, and it stays a regression test of `go test`.
set -euo pipefail
cd "$(dirname "$0")/.."
FUZZTIME=${FUZZTIME:-50000x}
n=0
while IFS=: read -r file target; do
  pkg=./$(dirname "$file")
  echo "fuzz: $pkg $target ($FUZZTIME)"
  go test -run '^$' -fuzz "^${target}\$" -fuzztime "$FUZZTIME" -timeout 5m "$pkg"
  n=$((n + 1))
done < <(git grep -o -E '^func Fuzz[A-Za-z0-9_]+' -- '*_test.go' | sed 's/func //')
if [ "$n" -eq 0 ]; then
  echo "fuzz: no fuzz targets found" >&2
  exit 1
fi
echo "fuzz: $n targets, $FUZZTIME each, no finding"
