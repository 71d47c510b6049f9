#!/usr/bin/env bash
# Builds the libFuzzer targets in Fuzz/ (AddressSanitizer, LeakSanitizer), replays each target's regression
# corpus (Fuzz/regressions/<target>: every input that once crashed it), then fuzzes each target for SECONDS
# from a seed corpus made of Fixtures. Prints executions per second and coverage per target and
# `N passed, N failed` (a target fails on a crash, a hang over 10 s, a leak or more than 4 GB).
# usage: scripts/fuzz.sh SECONDS [TARGET...]     (needs .build/release/swiftq for the calibration-table seeds)
set -uo pipefail
cd "$(dirname "$0")/.."
seconds=${1:?usage: fuzz.sh SECONDS [TARGET...]}
shift
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(FuzzONNX FuzzCalibrationTable FuzzImage FuzzWeightFile FuzzNumpy)
work=.build/fuzz
mkdir -p "$work"

echo "building the fuzz targets (-sanitize=fuzzer,address)"
swift build --package-path Fuzz -c release -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library \
  -Xcc -fsanitize=fuzzer-no-link,address > "$work/build.log" 2>&1 || { tail -30 "$work/build.log"; echo "0 passed, 1 failed"; exit 1; }
bin=Fuzz/.build/release

# Seed corpora, from Fixtures (the corpus folders grow with what the fuzzer finds; they are not committed).
seed() {
  local target=$1 dir=$work/corpus/$1
  mkdir -p "$dir"
  case $target in
    FuzzONNX) find Fixtures -maxdepth 1 -name "*.onnx" -size -20k -exec cp {} "$dir/" \; ;;   # small models: the big model-kind fixtures slow every run
    FuzzImage) for f in Fixtures/images/*/* Fixtures/image-kinds/*.png Fixtures/image-kinds/*.jpg; do cp "$f" "$dir/$(echo "$f" | tr / _)"; done ;;
    FuzzCalibrationTable)
      local tmp; tmp=$(mktemp -d)
      .build/release/swiftq quantize Fixtures/tiny_cnn.onnx --calib Fixtures/images --preset torch -o "$tmp/t.onnx" > /dev/null 2>&1
      cp "$tmp/t.calib.json" "$dir/tiny_cnn.calib.json" 2>/dev/null
      printf '{"format":"swiftq-calibration","images":1,"model":"m","skipped":0,"tensors":{},"version":1}' > "$dir/empty.calib.json"
      rm -rf "$tmp" ;;
    FuzzNumpy) for f in Fixtures/arrays/* Fixtures/arrays-single/*; do cp "$f" "$dir/$(echo "$f" | tr / _)"; done ;;
    FuzzWeightFile)
      local tmp; tmp=$(mktemp -d)
      .build/release/swiftq quantize Fixtures/tiny_cnn.onnx --calib Fixtures/images --preset torch -o "$tmp/t.onnx" > /dev/null 2>&1
      .build/release/swiftq quantize Fixtures/tiny_cnn.onnx --calib Fixtures/images --preset torch --weight-bits 4 --per-tensor -o "$tmp/p.onnx" > /dev/null 2>&1
      cp "$tmp/t.swq" "$dir/tiny_cnn.swq" 2>/dev/null; cp "$tmp/p.swq" "$dir/tiny_cnn_w4.swq" 2>/dev/null
      rm -rf "$tmp" ;;
  esac
}

passed=0; failed=0
for t in "${targets[@]}"; do
  seed "$t"
  regressions=(Fuzz/regressions/$t/*)
  if [ -e "${regressions[0]}" ]; then
    if "$bin/$t" -timeout=10 -rss_limit_mb=4096 "${regressions[@]}" > "$work/$t.replay.log" 2>&1; then
      echo "$t: ${#regressions[@]} regression inputs replayed, no crash"
    else
      echo "FAIL $t: a regression input crashes again:"; grep -E "ERROR|SUMMARY|Fatal|==[0-9]+==" "$work/$t.replay.log" | head -5
      failed=$((failed + 1)); continue
    fi
  fi
  mkdir -p "$work/artifacts"
  "$bin/$t" "$work/corpus/$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=4096 -print_final_stats=1 \
    -artifact_prefix="$work/artifacts/$t-" > "$work/$t.log" 2>&1
  status=$?
  execs=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$work/$t.log" | grep -o '[0-9]*$')
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$work/$t.log" | grep -o '[0-9]*$')
  cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$work/$t.log" | tail -1)
  corpus=$(ls "$work/corpus/$t" | wc -l)
  if [ $status -eq 0 ]; then
    echo "PASS $t: ${seconds} s, ${runs:-?} runs, ${execs:-?} exec/s, ${cov:-no coverage line}, corpus $corpus inputs"
    passed=$((passed + 1))
  else
    echo "FAIL $t (exit $status): $(grep -E 'ERROR|SUMMARY|Fatal error|timeout|out-of-memory' "$work/$t.log" | head -3 | tr '\n' ' ')"
    echo "     the input is in $work/artifacts/; add it to Fuzz/regressions/$t/ with the fix"
    failed=$((failed + 1))
  fi
done
echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
