#!/usr/bin/env bash
# Starts `mpirun -np 2 nnc tests/mpi/cnn_subset.lua` for many epochs, sends
# SIGNAL to rank 1 once both ranks have taken two steps, and prints how many
# seconds the job took to end after that, its exit status and its output.
# usage: kill_rank.sh SIGNAL NNC [nnc options...]
set -u
signal=$1 nnc=$2
shift 2
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
mpirun --allow-run-as-root --oversubscribe -np 2 sh -c \
  'echo $$ > '"$dir"'/pid_$OMPI_COMM_WORLD_RANK; exec "$0" "$@" --marker '"$dir"'/ready_$OMPI_COMM_WORLD_RANK' \
  "$nnc" tests/mpi/cnn_subset.lua --rows 64 --epochs 1000 "$@" >"$dir/out" 2>&1 &
job=$!
for _ in $(seq 600); do
  [ -e "$dir/ready_0" ] && [ -e "$dir/ready_1" ] && break
  kill -0 $job 2>/dev/null || break
  sleep 0.2
done
if ! [ -e "$dir/ready_1" ]; then
  echo "never ready"; kill $job; cat "$dir/out"; exit 1
fi
kill -"$signal" "$(cat "$dir/pid_1")"
start=$(date +%s.%N)
wait $job
rc=$?
end=$(date +%s.%N)
echo "ended after $(awk "BEGIN { print $end - $start }") s rc=$rc"
cat "$dir/out"
