# What the run_*_bench.sh scripts share, sourced by them (POSIX sh): the machine line, the reference's fixture
# check, and rounds that alternate our bench with the PyTorch-eager reference. Each script defines `ours` and
# `theirs` (one run of each side; both print a line with "median N ms"), then calls `alternate ROUNDS ARGS...`.

# "# machine: CPU, N cores; threads T; load 1 5 15".
machine_line() {
  echo "# machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(nproc) cores; threads $1; load $(cut -d' ' -f1-3 /proc/loadavg)"
}

# The N of "median N ms" in a bench line.
median_ms() { echo "$1" | sed 's/.*median *\([0-9.]*\) ms.*/\1/'; }
# The median and the lowest of a list of numbers.
middle() { printf '%s\n' $1 | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
lowest() { printf '%s\n' $1 | sort -g | head -n 1; }

# Runs `ours` and `theirs` with ARGS for ROUNDS rounds, the order flipping every round so that a change in machine
# load hits both alike; prints every run and collects each run's median in $all_ours and $all_theirs.
alternate() {
  rounds=$1
  shift
  all_ours=""; all_theirs=""
  i=0
  while [ "$i" -lt "$rounds" ]; do
    if [ $((i % 2)) -eq 0 ]; then a=$(ours "$@"); b=$(theirs "$@"); else b=$(theirs "$@"); a=$(ours "$@"); fi
    echo "$a  [round $((i + 1)), load $(cut -d' ' -f1 /proc/loadavg)]"; echo "$b"
    all_ours="$all_ours $(median_ms "$a")"; all_theirs="$all_theirs $(median_ms "$b")"
    i=$((i + 1))
  done
}

# "LABEL: libtorch A ms, pytorch-eager B ms; ratio libtorch / pytorch-eager A/B (below 1: LibTorch faster)".
ratio_line() {
  awk -v l="$1" -v a="$2" -v b="$3" \
    'BEGIN { printf "%s: libtorch %.1f ms, pytorch-eager %.1f ms; ratio libtorch / pytorch-eager %.2f (below 1: LibTorch faster)\n", l, a, b, a / b }'
}
