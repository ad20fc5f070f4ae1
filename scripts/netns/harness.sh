# SPDX-License-Identifier: Apache-2.0
# The test runner shared by scripts/netns-test.sh and scripts/nat-test.sh (sourced after topology.sh):
# one test per `run`, always followed by a teardown and a leftovers check, one PASS/FAIL line each.
# Globals the caller sets: FILTER, LIST, PASSED, FAILED; optional SKIP (regex) and BUDGET (seconds).

fail() { T_FAILS+=("$*"); return 1; }   # record a failure; returns 1 so callers can `|| return`
info() { T_INFO+=("$*"); }              # a figure for the PASS line

cfg() { printf '%s/%s.json' "$1" "$2"; }   # cfg DIR HOST
sc() { jq -r "$2" "$1/scenario.json"; }    # sc DIR JQ-EXPR

start() {  # start HOST CONFIG [ARGS...] : espd in namespace HOST, as process "espd-HOST"
  tp_espd_start "espd-$1" "$1" "$2" "${@:3}" || fail "$TP_ESPD_WHY"
}

run() {  # run NAME FUNCTION [ARGS...] : one test, always followed by a teardown
  local name=$1 t0 rest x
  shift
  [[ -z $FILTER || $name =~ $FILTER ]] || return 0
  [[ -n ${SKIP:-} && $name =~ $SKIP ]] && return 0
  if ((LIST)); then echo "$name"; return 0; fi
  T_FAILS=() T_INFO=()
  TP_LOGDIR=$TP_WORK/$name
  mkdir -p "$TP_LOGDIR"
  t0=$SECONDS
  if [[ -n ${BUDGET:-} ]] && ((SECONDS > BUDGET)); then
    fail "not run: the suite is past its ${BUDGET}s budget"
  else
    "$@"
  fi
  tp_teardown
  rest=$(tp_leftovers | tr '\n' ' ')
  [[ -z $rest ]] || fail "left behind after teardown: $rest"
  if ((${#T_FAILS[@]})); then
    FAILED=$((FAILED + 1))
    printf 'FAIL %s (%ss): %s\n' "$name" $((SECONDS - t0)) "${T_FAILS[0]}"
    for x in "${T_FAILS[@]:1}"; do printf '     %s\n' "$x"; done
    printf '     logs: %s\n' "$TP_LOGDIR"
  else
    PASSED=$((PASSED + 1))
    rest=""
    for x in "${T_INFO[@]}"; do rest+="${rest:+; }$x"; done
    [[ -n $rest ]] && rest=": $rest"
    printf 'PASS %s (%ss)%s\n' "$name" $((SECONDS - t0)) "$rest"
  fi
}
