# Shared by ensure-engine.sh and ensure-buildx.sh (sourced; both set STATE and say()): reading
# what apt offers, and fetching packages of another Debian suite without touching the host's apt.

apt_failed() { say "apt-get failed; see $STATE/apt.log"; tail -5 "$STATE/apt.log" >&2; exit 1; }

# The major of a Debian version: 1:26.1.5+dfsg1-9 -> 26 (0 for "(none)" or nothing).
major() { local v=${1#*:}; v=${v%%.*}; case $v in ''|*[!0-9]*) echo 0 ;; *) echo "$v" ;; esac; }
# 26.1.5+dfsg1-9 -> 26.1
major_minor() { local v=${1#*:}; echo "$v" | cut -d. -f1-2; }
# The version apt would install of package $1 ("(none)" when none); more apt options may follow.
candidate() {
  local package=$1; shift
  apt-cache "$@" policy "$package" 2>/dev/null | awk '/Candidate:/ { print $2; exit }'
}
has_candidate() { local c; c=$(candidate "$@"); [ -n "$c" ] && [ "$c" != "(none)" ]; }
installed() { dpkg-query -W -f '${Status}' "$1" 2>/dev/null | grep -q ' installed$'; }
os_release() { (. /etc/os-release 2>/dev/null && eval "echo \"\${$1:-}\""); }

# The Debian mirror this host's apt uses (a local mirror, a snapshot, a caching proxy), chosen as
# docklab.images.mirror chooses it for the course images: DOCKLAB_DEBIAN_MIRROR, else the http(s)
# source carrying this release, else one ending in /debian, else deb.debian.org.
debian_mirror() {
  if [ -n "${DOCKLAB_DEBIAN_MIRROR:-}" ]; then echo "${DOCKLAB_DEBIAN_MIRROR%/}"; return; fi
  local release sources
  release=$(os_release VERSION_CODENAME)
  sources=$(
    # "URI SUITE..." per source: one-line sources.list format, then deb822 .sources stanzas.
    cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null \
      | sed -n -E -e 's/#.*//' -e 's/^[[:space:]]*deb[[:space:]]+(\[[^]]*\][[:space:]]+)?//p' \
      | awk 'NF >= 2 { print $1, $2 }'
    for file in /etc/apt/sources.list.d/*.sources; do
      [ -f "$file" ] || continue
      awk 'BEGIN { RS = ""; FS = "\n" }
        { delete f; key = ""
          for (i = 1; i <= NF; i++) {
            line = $i
            if (line ~ /^[ \t]*#/) continue
            if (line ~ /^[ \t]/ && key != "") { f[key] = f[key] " " line; continue }
            if (match(line, /^[A-Za-z-]+:/)) {
              key = tolower(substr(line, 1, RLENGTH - 1)); f[key] = substr(line, RLENGTH + 1)
            }
          }
          if (tolower(f["enabled"]) ~ /no/ || (" " f["types"] " ") !~ /[ \t]deb[ \t]/) next
          n = split(f["uris"], uris, /[ \t]+/)
          for (j = 1; j <= n; j++) if (uris[j] != "") print uris[j], f["suites"] }' "$file"
    done | sed -E 's/[[:space:]]+/ /g')
  local found
  found=$(echo "$sources" | awk -v r="$release" '$1 ~ /^https?:\/\// {
      for (i = 2; i <= NF; i++) if ($i == r) { print $1; exit } }')
  [ -n "$found" ] ||
    found=$(echo "$sources" | awk '$1 ~ /^https?:\/\/.*\/debian\/?$/ { print $1; exit }')
  found=${found:-http://deb.debian.org/debian}
  echo "${found%/}"
}

apt_install() {
  apt-get install -y -q --no-install-recommends "$@" >>"$STATE/apt.log" 2>&1
}

# A private apt configuration for Debian suite $2 under folder $1 (its own source list, lists and
# caches: no apt source is added to the host, whose apt is left as it was), its lists read. Sets
# PRIVATE_APT to the options that make `apt-get`/`apt-cache` use it.
private_apt() {
  local dir=$1 suite=$2 mirror keyring=/usr/share/keyrings/debian-archive-keyring.gpg signed=""
  mirror=$(debian_mirror)
  mkdir -p "$dir/lists/partial" "$dir/cache/archives/partial" "$dir/debs"
  chmod -R a+rX "$dir"  # apt's download sandbox (user _apt) writes there
  chown _apt "$dir/debs" "$dir/lists/partial" 2>/dev/null || true
  [ -f "$keyring" ] && signed="[signed-by=$keyring] "
  echo "deb $signed$mirror $suite main" >"$dir/$suite.list"
  PRIVATE_APT=(-o "Dir::Etc::SourceList=$dir/$suite.list" -o Dir::Etc::SourceParts=-
               -o "Dir::State::Lists=$dir/lists" -o "Dir::Cache=$dir/cache")
  say "reading Debian $suite's package lists from $mirror ..."
  apt-get -q "${PRIVATE_APT[@]}" update >>"$STATE/apt.log" 2>&1
}
