#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Builds charon's kernel-espd and socket-espd plugins against the strongSwan that Debian installed,
# and installs them with their strongswan.d snippets.
#
# Debian ships no strongSwan headers, so the matching source package is fetched with
# `apt-get source` through a temporary deb-src list, configured with the flags of its own
# debian/rules (--enable-mediation among them: it changes the layout of daemon_t and ike_sa_t), and
# kept, configured, in .build/ beside this script. A second run finds it there and only recompiles
# the plugins.
#
#   sudo integrations/strongswan/build.sh              # install packages, build, install
#   sudo integrations/strongswan/build.sh --no-install # build into .build/ only
#   sudo integrations/strongswan/build.sh --reconfigure
#   sudo integrations/strongswan/build.sh --test        # also build and run tests/unit_tests.c
#
# Environment: ESPD_SWAN_BUILD (cache folder, default .build/ here), DESTDIR (staging root for
# the installed files).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
build=${ESPD_SWAN_BUILD:-$here/.build}
destdir=${DESTDIR:-}
swanlib=/usr/lib/ipsec
plugindir=$swanlib/plugins
confdir=/etc/strongswan.d/charon
niced=(nice -n 19)

install_plugins=1
reconfigure=0
run_tests=0
for arg in "$@"; do
  case $arg in
    --no-install) install_plugins=0 ;;
    --reconfigure) reconfigure=1 ;;
    --test) run_tests=1 ;;
    -h | --help)
      sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'
      exit 0
      ;;
    *)
      echo "build.sh: unknown argument $arg (try --help)" >&2
      exit 2
      ;;
  esac
done

log() { printf 'build.sh: %s\n' "$*" >&2; }
die() {
  log "$*"
  exit 1
}

[[ $(id -u) -eq 0 ]] || die "run as root: it installs packages and writes to $plugindir"

# What charon needs at run time, what the build needs, and what the configure step of Debian's
# flags checks for (each enabled plugin's library headers).
runtime_pkgs=(strongswan-charon strongswan-swanctl libcharon-extra-plugins libcharon-extauth-plugins strongswan-pki)
tool_pkgs=(build-essential pkg-config dpkg-dev)
configure_pkgs=(libgmp-dev libssl-dev libcurl4-openssl-dev libgcrypt20-dev libldap-dev libpam0g-dev
  libsystemd-dev libcap-dev libtss2-dev libnm-dev libiptc-dev)

missing_pkgs() {
  local p
  for p in "$@"; do
    if [[ $(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true) != installed ]]; then
      echo "$p"
    fi
  done
}

apt_updated=0
apt_install() {
  local missing
  mapfile -t missing < <(missing_pkgs "$@")
  ((${#missing[@]})) || return 0
  if ((!apt_updated)); then
    log "apt-get update"
    "${niced[@]}" apt-get update -qq
    apt_updated=1
  fi
  log "installing ${missing[*]}"
  # Only what is missing, and nothing already installed upgraded on its own account
  # (libssl3 under a running espd stays as it is).
  DEBIAN_FRONTEND=noninteractive "${niced[@]}" apt-get install -y -qq --no-install-recommends --no-upgrade \
    "${missing[@]}" >/dev/null
}

apt_install "${runtime_pkgs[@]}" "${tool_pkgs[@]}"

installed=$(dpkg-query -W -f='${Version}' libstrongswan)
charon_version=$(dpkg-query -W -f='${Version}' strongswan-libcharon)
[[ $installed == "$charon_version" ]] ||
  die "libstrongswan $installed and strongswan-libcharon $charon_version differ: upgrade both first"
upstream=${installed#*:}
upstream=${upstream%%-*}
[[ $upstream == 5.9.8 ]] || log "note: written for strongSwan 5.9.8, building against $installed"
[[ -e $swanlib/libcharon.so.0 && -e $swanlib/libstrongswan.so.0 ]] ||
  die "$swanlib/libcharon.so.0 or libstrongswan.so.0 missing although the packages are installed"

mkdir -p "$build"
[[ -e $build/.gitignore ]] || printf '# build cache of integrations/strongswan/build.sh\n*\n' >"$build/.gitignore"
src=$build/strongswan
stamp=$build/configured.stamp

# --- the source package, through a temporary deb-src list ---------------------------------------

srclist_d=/etc/apt/sources.list.d
tmp_sources=$srclist_d/espd-strongswan-deb-src.sources
tmp_list=$srclist_d/espd-strongswan-deb-src.list
cleanup_sources() {
  if [[ -e $tmp_sources || -e $tmp_list ]]; then
    rm -f "$tmp_sources" "$tmp_list"
    log "removed the temporary deb-src list; apt-get update"
    "${niced[@]}" apt-get update -qq || log "apt-get update after removing the deb-src list failed"
  fi
}

# Writes deb-src entries for every Debian entry of the system's own sources (same mirrors, suites,
# components and keys), deb822 and one-line styles alike.
write_deb_src() {
  local codename f
  codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
  [[ -n $codename ]] || die "cannot tell the Debian release from /etc/os-release"
  : >"$tmp_sources"
  for f in "$srclist_d"/*.sources; do
    [[ -e $f && $f != "$tmp_sources" ]] || continue
    awk -v codename="$codename" '
      function flush() {
        if (types ~ /(^|[ \t])deb([ \t]|$)/ && uris ~ /debian/ && suites ~ codename) {
          print "Types: deb-src"; printf "%s", body; print ""
        }
        types = ""; uris = ""; suites = ""; body = ""
      }
      /^[ \t]*#/ { next }
      /^[ \t]*$/ { flush(); next }
      /^Types:/ { types = $0; next }
      /^Enabled:[ \t]*no/ { types = ""; next }
      /^URIs:/ { uris = $0 }
      /^Suites:/ { suites = $0 }
      { body = body $0 "\n" }
      END { flush() }
    ' "$f" >>"$tmp_sources"
  done
  : >"$tmp_list"
  for f in /etc/apt/sources.list "$srclist_d"/*.list; do
    [[ -e $f && $f != "$tmp_list" ]] || continue
    awk -v codename="$codename" '$1 == "deb" && /debian/ && $0 ~ codename { $1 = "deb-src"; print }' "$f" >>"$tmp_list"
  done
  [[ -s $tmp_sources ]] || rm -f "$tmp_sources"
  [[ -s $tmp_list ]] || rm -f "$tmp_list"
  [[ -e $tmp_sources || -e $tmp_list ]] || die "found no Debian $codename entry in the apt sources to mirror as deb-src"
}

fetch_source() {
  local dl=$build/download version best=
  rm -rf "$dl" "$src" "$build/source-version" "$stamp"
  mkdir -p "$dl"
  trap cleanup_sources EXIT
  write_deb_src
  log "temporary deb-src list written; apt-get update"
  "${niced[@]}" apt-get update -qq
  apt_updated=1
  # The installed version; a mirror may lack that exact source (a security update whose source it
  # does not serve), then the newest other Debian revision of the same upstream version.
  if (cd "$dl" && "${niced[@]}" apt-get source -qq --download-only "strongswan=$installed" >/dev/null 2>&1); then
    best=$installed
  else
    rm -f "$dl"/*
    for version in $(apt-cache showsrc strongswan | awk '/^Version:/ {print $2}' | sort -u); do
      v=${version#*:}
      [[ $version != "$installed" && ${v%%-*} == "$upstream" ]] || continue
      if [[ -z $best ]] || dpkg --compare-versions "$version" gt "$best"; then best=$version; fi
    done
    [[ -n $best ]] || die "the mirror serves no strongswan $upstream source package"
    log "the mirror does not serve the source of strongswan $installed; using $best (same upstream $upstream)"
    (cd "$dl" && "${niced[@]}" apt-get source -qq --download-only "strongswan=$best" >/dev/null 2>&1) ||
      die "apt-get source strongswan=$best failed"
  fi
  cleanup_sources
  trap - EXIT
  "${niced[@]}" dpkg-source --no-check -x "$(ls "$dl"/strongswan_*.dsc)" "$src" >/dev/null
  printf '%s\n' "$best" >"$build/source-version"
}

# --- configure with debian/rules' flags -----------------------------------------------------------

debian_configure_args() {
  # debian/rules is a makefile: let make evaluate CONFIGUREARGS, with its architecture and OS
  # conditionals, exactly as dh_auto_configure would see it.
  make -s -C "$src" -f - print-espd-configure-args <<'EOF'
include debian/rules
print-espd-configure-args:
	@echo $(CONFIGUREARGS)
EOF
}

configure_source() {
  local args multiarch
  args=$(debian_configure_args)
  [[ $args == *--enable-mediation* ]] || die "debian/rules has no --enable-mediation: check $src/debian/rules"
  multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
  apt_install "${configure_pkgs[@]}"
  log "configuring strongSwan $(cat "$build/source-version") with debian/rules' flags"
  # The flags dh_auto_configure puts in front of debian/rules' own (which override --libdir).
  # shellcheck disable=SC2086
  (cd "$src" && export DEB_BUILD_MAINT_OPTIONS=hardening=+all && eval "$(dpkg-buildflags --export=sh)" &&
    "${niced[@]}" ./configure --build="$multiarch" --prefix=/usr --includedir=/usr/include \
      --mandir=/usr/share/man --infodir=/usr/share/info --sysconfdir=/etc --localstatedir=/var \
      --disable-option-checking --disable-silent-rules --libdir="/usr/lib/$multiarch" --runstatedir=/run \
      --disable-maintainer-mode --disable-dependency-tracking $args >"$build/configure.log" 2>&1) ||
    die "configure failed; the end of $build/configure.log:
$(tail -n 15 "$build/configure.log")"
  grep -qE '^#define ME( |$)' "$src/config.h" || die "config.h lacks ME (mediation): the layout would differ from charon's"
  printf '%s\n%s\n' "$installed" "$args" >"$stamp"
}

if ((reconfigure)) || [[ ! -e $src/debian/rules || ! -e $build/source-version ]]; then
  fetch_source
fi
if [[ ! -e $stamp || ! -e $src/config.h || $(head -n 1 "$stamp") != "$installed" ]]; then
  configure_source
else
  log "using the configured source in $src ($(cat "$build/source-version"))"
fi

# --- the plugins -----------------------------------------------------------------------------------

swan_version=$(sed -n 's/^#define VERSION "\(.*\)"$/\1/p' "$src/config.h")
[[ $swan_version == "$upstream" ]] || die "the configured source is $swan_version, the installed charon $upstream"

read -r -a cflags <<<"$(DEB_BUILD_MAINT_OPTIONS=hardening=+all dpkg-buildflags --get CFLAGS)"
read -r -a cppflags <<<"$(DEB_BUILD_MAINT_OPTIONS=hardening=+all dpkg-buildflags --get CPPFLAGS)"
read -r -a ldflags <<<"$(DEB_BUILD_MAINT_OPTIONS=hardening=+all dpkg-buildflags --get LDFLAGS)"
common_flags=("${cppflags[@]}" "${cflags[@]}" -fPIC -fvisibility=hidden -Wall -Wextra -Wno-unused-parameter
  -Wno-sign-compare -Wno-missing-field-initializers -Werror=implicit-function-declaration
  -include "$src/config.h" -I"$src/src/libstrongswan" -I"$src/src/libcharon" -I"$here/src/common"
  -DESPD_SWAN_BUILT_FOR="\"$installed\"")

out=$build/out
mkdir -p "$out/obj"

# Compiles the sources of one plugin (its folder plus src/common) and links them into one shared
# object. Objects are rebuilt when their source, a header or the configuration is newer.
build_plugin() {
  local name=$1 dir=$here/src/$1 so=$out/libstrongswan-$1.so objs=() c o rebuilt=0
  local headers=("$here"/src/common/*.h "$dir"/*.h "$src/config.h")
  mkdir -p "$out/obj/$name"
  for c in "$here"/src/common/*.c "$dir"/*.c; do
    o=$out/obj/$name/$(basename "$c" .c).o
    objs+=("$o")
    if [[ ! -e $o || $c -nt $o || $0 -nt $o ]] || newer_than "$o" "${headers[@]}"; then
      "${niced[@]}" cc "${common_flags[@]}" -I"$dir" -c "$c" -o "$o"
      rebuilt=1
    fi
  done
  if ((rebuilt)) || [[ ! -e $so ]]; then
    "${niced[@]}" cc -shared "${ldflags[@]}" -Wl,--no-undefined -Wl,-soname,"libstrongswan-$name.so" \
      -Wl,-rpath,"$swanlib" -o "$so" "${objs[@]}" "$swanlib/libcharon.so.0" "$swanlib/libstrongswan.so.0" -lpthread
    log "built $so"
  else
    log "$so is up to date"
  fi
}

newer_than() {
  local target=$1 f
  shift
  for f in "$@"; do [[ $f -nt $target ]] && return 0; done
  return 1
}

build_plugin kernel-espd
build_plugin socket-espd

if ((run_tests)); then
  "${niced[@]}" cc "${common_flags[@]}" -fvisibility=default -I"$here/src/kernel-espd" \
    -I"$here/src/socket-espd" \
    -o "$out/unit_tests" "$here/tests/unit_tests.c" "$here"/src/common/espd_json.c \
    "$here"/src/common/espd_buf.c "$here"/src/kernel-espd/kernel_espd_ts.c \
    "$here"/src/socket-espd/socket_espd_punt.c \
    "$here"/src/kernel-espd/kernel_espd_algs.c -Wl,-rpath,"$swanlib" "$swanlib/libstrongswan.so.0"
  "$out/unit_tests" || die "unit tests failed"
fi

if ((install_plugins)); then
  install -d "$destdir$plugindir" "$destdir$confdir"
  for name in kernel-espd socket-espd; do
    if ! cmp -s "$out/libstrongswan-$name.so" "$destdir$plugindir/libstrongswan-$name.so"; then
      install -m 0644 "$out/libstrongswan-$name.so" "$destdir$plugindir/libstrongswan-$name.so"
      log "installed $destdir$plugindir/libstrongswan-$name.so"
    fi
    # The snippet is configuration: an operator's edited copy is kept.
    if [[ ! -e $destdir$confdir/$name.conf ]]; then
      install -m 0644 "$here/conf/$name.conf" "$destdir$confdir/$name.conf"
      log "installed $destdir$confdir/$name.conf"
    elif ! cmp -s "$here/conf/$name.conf" "$destdir$confdir/$name.conf"; then
      log "kept $destdir$confdir/$name.conf (differs from conf/$name.conf)"
    fi
  done
fi
log "done: strongSwan $installed, plugins in $out"
