#!/usr/bin/env bash
# nat.sh -- which NAT cases go direct and how long the link took to make:
# p50 and max over N fresh links per case (tests/nat/topology.sh with
# TRIES), for docs/NAT.md. Root, iproute2 and nftables needed.
#
#   bench/nat.sh [BIN_DIR] [N]
set -u
BIN=${1:-build/bin}
N=${2:-20}
HERE=$(cd "$(dirname "$0")/.." && pwd)
printf '| case | direct | paths | setup p50 (ms) | setup max (ms) |\n'
printf '| --- | --- | --- | --- | --- |\n'
for c in eim public samenat symmetric firewall delay; do
  tmp=$(mktemp)
  bash "$HERE/tests/nat/topology.sh" "$BIN" "$c" "$N" >"$tmp" 2>&1
  rc=$?
  out=$(tr -d '\0' <"$tmp")
  rm -f "$tmp"
  if [ $rc = 77 ]; then
    printf '| %s | skipped: %s | | | |\n' "$c" "$(echo "$out" | grep SKIP | cut -c7-)"
    continue
  fi
  [ $rc = 0 ] || { printf '| %s | FAILED (rc %s) | | | |\n' "$c" "$rc"; continue; }
  echo "$out" | awk -v c="$c" '
    $1 == "try" && $3 == "direct" { n++; d++; p[$4]++; v[n] = $5 }
    $1 == "try" && $3 == "relay" { n++; p["relay (" $5 ")"]++; v[n] = $4 }
    END {
      m = n; for (i = 1; i <= m; i++) a[i] = v[i] + 0
      for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++)
        if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
      paths = ""; for (k in p) paths = paths (paths ? ", " : "") k " " p[k]
      printf "| %s | %d/%d | %s | %d | %d |\n", c, d + 0, n, paths,
             a[int((m + 1) / 2)], a[m]
    }'
done
