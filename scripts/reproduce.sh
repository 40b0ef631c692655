#!/usr/bin/env bash
# Reproduce every sweep behind the README's numbers, store their records and regenerate the results.
#
#   bash scripts/reproduce.sh [--out DIR] [PART ...] [-- OVERRIDE ...]
#
# PART: study ablation digits grids plus ingredients data_scaling shallow_raw (the default: all eight), or
# plus_grids (the four validation grids that chose siamese_plus's settings, run only when named).
# Each sweep runs with the default launcher (parallel, one thread per job) into DIR/sweeps/<name>; its
# records go to DIR/results/<name> (jobs.jsonl + sweep.json) and DIR/RESULTS.md is regenerated.
# DIR defaults to outputs/reproduce/<timestamp>; the sweep folders always go there. To compare with the stored records:
#   python src/report.py --compare DIR/results docs/results
# To replace the stored records (maintainers): --out docs, then commit docs/ and README.md.
# OVERRIDEs after -- go to every sweep (e.g. -- debug=tiny for a quick check of the script).
set -euo pipefail
cd "$(dirname "$0")/.."

work="outputs/reproduce/$(date +%Y-%m-%d_%H-%M-%S)"  # the sweeps themselves (checkpoints, events)
out="$work"
parts=()
extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out="${2:?--out needs a folder}"; shift 2 ;;
    -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    --) shift; extra=("$@"); break ;;
    study|ablation|digits|grids|plus|ingredients|data_scaling|shallow_raw|plus_grids) parts+=("$1"); shift ;;
    *) echo "reproduce.sh: unknown part '$1' (allowed: study ablation digits grids plus ingredients data_scaling shallow_raw plus_grids)" >&2; exit 2 ;;
  esac
done
[ ${#parts[@]} -gt 0 ] || parts=(study ablation digits grids plus ingredients data_scaling shallow_raw)
python=${PYTHON:-python}

# words ARG...: the arguments as one line a shell reads back the same (single quotes where needed).
words() {
  local w line=()
  for w in "$@"; do
    if [[ $w =~ ^[A-Za-z0-9_=.,/:+@-]+$ ]]; then line+=("$w"); else line+=("'${w//\'/\'\\\'\'}'"); fi
  done
  echo "${line[*]}"
}

# sweep NAME ORDER TITLE VERSUS COMMAND...: run one multirun, then store its records (ORDER: its place in RESULTS.md).
sweep() {
  local name=$1 order=$2 title=$3 versus=$4; shift 4
  local dir="$work/sweeps/$name" start end
  echo "== $name: python src/run.py -m $*"
  start=$EPOCHREALTIME
  "$python" src/run.py -m "$@" "${extra[@]}" "hydra.sweep.dir=$dir"
  end=$EPOCHREALTIME
  local args=(--store "$dir" "$out/results/$name" --title "$title" --order "$order"
              --command "python src/run.py -m $(words "$@" "${extra[@]}")"
              --seconds "$(awk "BEGIN { print $end - $start }")")
  [ -z "$versus" ] || args+=(--versus "$versus")
  "$python" src/report.py "${args[@]}"
}

# best NAME ORDER GRID MODEL TITLE VERSUS: evaluate a grid's winner (its best.yaml command) on seeds 0-9.
best() {
  local name=$1 order=$2 grid=$3 model=$4 title=$5 versus=$6
  local words
  words=$("$python" -c 'import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))[sys.argv[2]]["command"])' \
    "$work/sweeps/$grid/best.yaml" "$model")
  eval "set -- ${words#python src/run.py -m }"  # the command exactly as best.yaml prints it
  sweep "$name" "$order" "$title" "$versus" "$@"
}

for part in "${parts[@]}"; do
  case "$part" in
    study) sweep study 1 "the study: shallow, twin, siamese with the original report's settings" "" \
             model=shallow,twin,siamese 'seed=range(10)' ;;
    ablation) sweep ablation 2 "the 2 x 2 ablation: weight sharing x auxiliary loss" "" experiment=ablation ;;
    digits) sweep digits 3 "siamese with the digits head (aux_weight 1)" "siamese=study:siamese" \
              model=siamese model.net.head=digits model.aux_weight=1 'seed=range(10)' ;;
    grids)
      sweep shallow_grid 4 "validation grid of the shallow net (tuning seeds)" "" hparams_search=shallow_grid model=shallow
      sweep siamese_grid 5 "validation grid of the siamese net (tuning seeds)" "" hparams_search=deep_grid model=siamese
      sweep twin_grid 6 "validation grid of the twin net (tuning seeds)" "" hparams_search=deep_grid model=twin
      best shallow_best 7 shallow_grid shallow "the shallow grid's winner on seeds 0-9" "shallow=study:shallow"
      best siamese_best 8 siamese_grid siamese "the siamese grid's winner on seeds 0-9" "siamese=study:siamese"
      best twin_best 9 twin_grid twin "the twin grid's winner on seeds 0-9" "twin=study:twin" ;;
    plus)
      sweep siamese_plus 10 "siamese_plus under the strict protocol (plus_grid3's recipe: aux_weight 0.5)" \
        "siamese_plus=study:siamese" model=siamese_plus model.aux_weight=0.5 'seed=range(10)'
      sweep plus_grid4_best 18 "plus_grid4's winner (siamese_plus with aux_weight 1) on seeds 0-9" \
        "siamese_plus=siamese_plus:siamese_plus" model=siamese_plus 'seed=range(10)' ;;
    shallow_raw) sweep shallow_raw 16 "shallow on raw pixels (the report's inputs), with the end-of-epoch training accuracy" \
                   "shallow=study:shallow" model=shallow data.normalize=false +data.eval_train=true 'seed=range(10)' ;;
    ingredients) sweep siamese_plus_ingredients 11 "siamese_plus without each ingredient in turn" "" \
                   experiment=siamese_plus_ingredients ;;
    data_scaling) sweep data_scaling 12 "twin and siamese on 250 to 4000 training pairs" "" experiment=data_scaling ;;
    plus_grids)
      # each preset pins the recipe as it stood at its stage
      sweep plus_grid 13 "siamese_plus grid, stage 1 (tuning seeds)" "" hparams_search=plus_grid model=siamese_plus
      sweep plus_grid2 14 "siamese_plus grid, stage 2 (tuning seeds)" "" hparams_search=plus_grid2 model=siamese_plus
      sweep plus_grid3 15 "siamese_plus grid, stage 3 (tuning seeds)" "" hparams_search=plus_grid3 model=siamese_plus
      sweep plus_grid4 17 "siamese_plus grid, stage 4: auxiliary weight x ensemble (tuning seeds)" "" \
        hparams_search=plus_grid4 model=siamese_plus ;;
  esac
done

readme=()
[ "$out" != docs ] || readme=(--readme README.md)
"$python" src/report.py --results "$out/results" "${readme[@]}"
echo "records: $out/results; results: $out/RESULTS.md"
echo "compare with the stored ones: python src/report.py --compare $out/results docs/results"
