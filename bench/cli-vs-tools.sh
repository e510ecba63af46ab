#!/usr/bin/env bash
# Whole-process benchmark of the ferroflux CLI's engine front-ends against the real tools, side
# by side in one run, reported as medians and ratios:
#   ferroflux kustomize build DIR   vs  kubectl kustomize DIR      (over the corpus overlays)
#   ferroflux helm template N CHART vs  helm template N CHART      (charts made by `helm create`)
# Usage: bench/cli-vs-tools.sh [FERROFLUX_BIN] [OVERLAY_LIMIT] [RUNS]
# Build first: cargo build --release -p ferroflux-cli. Needs kubectl, and helm from
# ../shared/tools/get-oracles.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
ferroflux=${1:-${CARGO_TARGET_DIR:-$here/target}/release/ferroflux}
limit=${2:-100}
runs=${3:-11}
corpus="${FERROFLUX_CORPUS:-$here/../shared/corpus}/kustomize"
helm=$(command -v helm || echo "$HOME/.cache/ferroflux-oracles/bin/helm")
[ -x "$ferroflux" ] || { echo "no ferroflux binary at $ferroflux (cargo build --release -p ferroflux-cli)" >&2; exit 2; }
[ -x "$helm" ] || { echo "helm not found: run ../shared/tools/get-oracles" >&2; exit 2; }

# median of the numbers on stdin
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
# time_us CMD... : wall time of one run in microseconds (bash's EPOCHREALTIME: no process is
# spawned for the clock itself)
time_us() { local s e; s=${EPOCHREALTIME/[.,]/}; "$@" >/dev/null 2>&1 || true; e=${EPOCHREALTIME/[.,]/}; echo $(( e - s )); }

echo "== kustomize: first $limit overlays of the corpus, one run each"
ours_all=(); theirs_all=(); n=0; identical=0
while IFS=$'\t' read -r dir _; do
  [ -n "$dir" ] || continue
  d="$corpus/$dir"
  [ -d "$d" ] || continue
  ours_all+=("$(time_us "$ferroflux" kustomize build "$d")")
  theirs_all+=("$(time_us kubectl kustomize "$d")")
  if cmp -s <("$ferroflux" kustomize build "$d" 2>/dev/null) <(kubectl kustomize "$d" 2>/dev/null); then identical=$((identical + 1)); fi
  n=$((n + 1))
  [ "$n" -ge "$limit" ] && break
done < <(tail -n +2 "$corpus/index.tsv")
mo=$(printf '%s\n' "${ours_all[@]}" | median); mt=$(printf '%s\n' "${theirs_all[@]}" | median)
so=$(printf '%s\n' "${ours_all[@]}" | awk '{s+=$1} END {print s}'); st=$(printf '%s\n' "${theirs_all[@]}" | awk '{s+=$1} END {print s}')
printf 'overlays: %d (identical output: %d)\n' "$n" "$identical"
printf 'median per overlay: ferroflux %.1f ms, kubectl %.1f ms -> %.1fx faster\n' "$(echo "$mo/1000" | bc -l)" "$(echo "$mt/1000" | bc -l)" "$(echo "$mt/$mo" | bc -l)"
printf 'total:              ferroflux %.2f s,  kubectl %.2f s  -> %.1fx faster\n' "$(echo "$so/1000000" | bc -l)" "$(echo "$st/1000000" | bc -l)" "$(echo "$st/$so" | bc -l)"

echo "== helm template: helm create's chart, $runs runs each"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
"$helm" create "$tmp/demo" >/dev/null
cmp -s <("$ferroflux" helm template rel "$tmp/demo") <("$helm" template rel "$tmp/demo") && same=yes || same=no
ours=(); theirs=()
for _ in $(seq "$runs"); do
  ours+=("$(time_us "$ferroflux" helm template rel "$tmp/demo")")
  theirs+=("$(time_us "$helm" template rel "$tmp/demo")")
done
mo=$(printf '%s\n' "${ours[@]}" | median); mt=$(printf '%s\n' "${theirs[@]}" | median)
printf 'identical output: %s\n' "$same"
printf 'median: ferroflux %.1f ms, helm %.1f ms -> %.1fx faster\n' "$(echo "$mo/1000" | bc -l)" "$(echo "$mt/1000" | bc -l)" "$(echo "$mt/$mo" | bc -l)"
