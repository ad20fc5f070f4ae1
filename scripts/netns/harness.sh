# SPDX-License-Identifier: Apache-2.0
# shellcheck shell=bash disable=SC2034  # a sourced library: its callers and topology.sh read the globals it sets
# The test runner shared by the live bash suites (scripts/control-test.sh, scripts/hostile-test.sh;
# sourced after topology.sh; netns-test and nat-test are pytest now: tests/live -m netns / -m nat):
# one test per `run`, always followed by a teardown and a leftovers check, one PASS/FAIL line each.
# Globals the caller sets: FILTER, LIST, PASSED, FAILED; optional SKIP (regex) and BUDGET (seconds).

fail() { T_FAILS+=("$*"); return 1; }   # record a failure; returns 1 so callers can `|| return`
info() { T_INFO+=("$*"); }              # a figure for the PASS line

cfg() { printf '%s/%s.json' "$1" "$2"; }   # cfg DIR HOST
sc() { jq -r "$2" "$1/scenario.json"; }    # sc DIR JQ-EXPR
sock() { jq -r .control "$(cfg "$1" "$2")"; }   # sock DIR HOST : the control socket of HOST's config

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

suite_args() {  # suite_args SCRIPT HELP_LINES "$@" : the options every live suite takes
  # --espd PATH, -k REGEX, --skip REGEX, --keep, --list, -h; sets FILTER SKIP KEEP LIST and ESPD
  # (default: $ESPD, else the newer of .build/release/espd and .build/debug/espd), exported.
  local script=$1 help=$2 espd=""
  shift 2
  FILTER="" SKIP="" KEEP=0 LIST=0
  while (($#)); do
    case $1 in
      --espd) espd=${2:?--espd needs a path}; shift 2 ;;
      -k) FILTER=${2:?-k needs a regex}; shift 2 ;;
      --skip) SKIP=${2:?--skip needs a regex}; shift 2 ;;
      --keep) KEEP=1; shift ;;
      --list) LIST=1; shift ;;
      -h | --help) sed -n "${help}p" "$script"; exit 0 ;;
      *) echo "$(basename "$script"): unknown argument $1 (try --help)" >&2; exit 2 ;;
    esac
  done
  ESPD=${espd:-${ESPD:-}}
  if [[ -z $ESPD ]]; then
    ESPD=.build/debug/espd
    [[ -x .build/release/espd && ! .build/release/espd -ot .build/debug/espd ]] && ESPD=.build/release/espd
  fi
  [[ $ESPD == /* ]] || ESPD=$ROOT/$ESPD
  export ESPD
}

suite_summary() {  # the cleanup check (our namespaces, processes, a TUN in the root namespace), the
  # work dir kept on failure or --keep, "N passed, M failed"; returns 1 if anything failed
  local left
  left=$(tp_leftovers | tr '\n' ' ')
  ip link show espd0 >/dev/null 2>&1 && left+="espd0 in the root namespace "
  if [[ -z $left ]]; then PASSED=$((PASSED + 1)); echo "PASS cleanup: no namespaces, processes or TUN devices left (${SECONDS}s in all)"
  else FAILED=$((FAILED + 1)); echo "FAIL cleanup: left behind: $left"; fi
  if ((FAILED)); then TP_KEEP=2; echo "logs, configs and captures kept in $TP_WORK"
  elif ((KEEP)); then TP_KEEP=2; echo "logs, configs and captures in $TP_WORK"; fi
  echo "$PASSED passed, $FAILED failed"
  ((FAILED == 0))
}
