#!/usr/bin/env bash
# fuzz.sh [SECONDS] -- build the libFuzzer targets (fuzz/, clang, ASan+UBSan)
# in build-fuzz/, replay each target's committed corpus once (regression),
# then fuzz each target for SECONDS (default 60) on a temporary copy of its
# corpus. Exit 1 on any crash, leak, timeout or broken invariant, printing the
# input (hex) and where it was saved. Nothing is ever written into fuzz/.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
secs=${1:-60}
case $secs in ''|*[!0-9]*) echo "usage: scripts/fuzz.sh [SECONDS]" >&2; exit 2 ;; esac

# clang and libFuzzer's runtime (compiler-rt) are in scripts/deps.sh's list.
scripts/deps.sh

build=$root/build-fuzz
cmake -S fuzz -B "$build" -DCMAKE_C_COMPILER=clang >/dev/null
cmake --build "$build" -j2

# target -> its corpus folder under fuzz/corpus/
targets=()
for t in frames server client tls; do
  [ -x "$build/fuzz_$t" ] && [ -d "fuzz/corpus/$t" ] && targets+=("$t")
done

work=$(mktemp -d "${TMPDIR:-/tmp}/chat-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
failed=0

# Prints every crash-/leak-/timeout-/oom- file libFuzzer left in $1.
report() {
  local dir=$1 f found=0
  for f in "$dir"/crash-* "$dir"/leak-* "$dir"/timeout-* "$dir"/oom-*; do
    [ -f "$f" ] || continue
    found=1
    keep=$root/build-fuzz/artifacts
    mkdir -p "$keep"
    cp "$f" "$keep/"
    echo "fuzz: FAILING INPUT $keep/$(basename "$f") ($(wc -c < "$f") bytes):" >&2
    od -An -tx1 -v "$f" | head -64 >&2
  done
  return $found
}

# The libFuzzer options every run shares: bounded memory and time per input,
# and at most one job, so a busy 2-core machine still finishes.
opts=(-rss_limit_mb=2048 -timeout=10 -print_final_stats=1)

for t in "${targets[@]}"; do
  bin=$build/fuzz_$t
  art=$work/$t-artifacts/
  mkdir -p "$art" "$work/$t"

  echo "fuzz: $t: replaying fuzz/corpus/$t once" >&2
  if ! timeout 600 "$bin" "${opts[@]}" -artifact_prefix="$art" -runs=0 \
      "fuzz/corpus/$t" > "$work/$t-replay.log" 2>&1; then
    tail -40 "$work/$t-replay.log" >&2
    # -runs=0 on a directory does not save the input; find it by file.
    for f in "fuzz/corpus/$t"/*; do
      if ! timeout 60 "$bin" "${opts[@]}" -artifact_prefix="$art" "$f" \
          > /dev/null 2>&1; then
        echo "fuzz: $t: corpus file $f fails" >&2
        od -An -tx1 -v "$f" | head -64 >&2
      fi
    done
    failed=1
    continue
  fi

  echo "fuzz: $t: fuzzing for ${secs}s" >&2
  cp -R "fuzz/corpus/$t/." "$work/$t/"
  # max_total_time stops libFuzzer between inputs; timeout(1) is the hard
  # stop should one input hang past -timeout.
  if ! timeout $((secs + 120)) "$bin" "${opts[@]}" -artifact_prefix="$art" \
      -max_total_time="$secs" "$work/$t" > "$work/$t.log" 2>&1; then
    tail -60 "$work/$t.log" >&2
    failed=1
  fi
  report "$art" || failed=1
  grep -E '^#[0-9]+.*(DONE|pulse)|stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)' \
    "$work/$t.log" | tail -4 | sed "s/^/fuzz: $t: /" >&2 || true
done

if [ $failed -ne 0 ]; then
  echo "fuzz: FAILED (inputs above; kept in build-fuzz/artifacts/)" >&2
  exit 1
fi
echo "fuzz: ok: ${targets[*]}" >&2
