#!/bin/bash
# `vfe stream` as a pipeline's stage: each step's line must come out as soon as its row is in,
# while the input is still open (a live source). The rows go in through a FIFO one at a time;
# after each, the test waits (at most 20 s) for that step's line before it writes the next.
# Usage: stream_pipe.sh VFE MODEL WORK_DIR
set -u
vfe=$1 model=$2 work=$3
rm -rf "$work" && mkdir -p "$work" || exit 1
mkfifo "$work/in" || exit 1
"$vfe" stream "$model" < "$work/in" > "$work/out" 2> "$work/err" &
pid=$!
exec 3> "$work/in"
rows=("0.39,-1.28" "0.46,-0.79" "NA,NA" "0.61,-0.64")
for k in "${!rows[@]}"; do
  echo "${rows[$k]}" >&3
  want=$((k + 1))
  for _ in $(seq 200); do
    [ "$(wc -l < "$work/out")" -ge "$want" ] && break
    sleep 0.1
  done
  if [ "$(wc -l < "$work/out")" -lt "$want" ]; then
    echo "step $want: no line 20 s after its row (the output is not flushed per step)"
    exec 3>&-; kill "$pid"; cat "$work/err"; exit 1
  fi
done
exec 3>&-
wait "$pid" || { echo "vfe stream failed: $(cat "$work/err")"; exit 1; }
grep -q '"step":3,.*"missing":1' "$work/out" || { echo "step 3 is not missing:"; cat "$work/out"; exit 1; }
echo "4 steps, each line out before the next row went in"
