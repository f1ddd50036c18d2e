# Shared by scripts/run and scripts/test (sourced, not run): system packages, the virtual
# environment, and the local Elasticsearch. The caller sets LOG_PREFIX and REPO_ROOT first.
#
# Environment read here:
#   VEILLE_VENV     the virtual environment to use, created when missing (default <repo>/.venv)
#   PYTHON          the Python that creates it (default python3; 3.11 or newer)
#   VEILLE_ES_URL   an Elasticsearch cluster to use; when unset, scripts/es-local starts one

log() { printf '[%s] %s\n' "$LOG_PREFIX" "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}

# apt_install PACKAGE...: Debian packages, as root or through sudo. --no-install-recommends
# keeps apt from pulling in more than asked (docker-compose would bring the Docker engine).
apt_install() {
  command -v apt-get >/dev/null 2>&1 || die "install these first (no apt-get here): $*"
  local sudo=()
  if [[ $(id -u) != 0 ]]; then
    command -v sudo >/dev/null 2>&1 || die "install these first, as root: $*"
    sudo=(sudo)
  fi
  log "installing $*"
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
    --no-install-recommends "$@"
}

# need_commands COMMAND:PACKAGE...: installs the packages whose command is missing.
need_commands() {
  local pair missing=()
  for pair in "$@"; do
    command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
  done
  if ((${#missing[@]})); then apt_install "${missing[@]}"; fi
}

# venv_is_current PYTHON EXTRAS: true when Veille is installed in that environment from this
# checkout, with this pyproject.toml's commands and requirements (and those of EXTRAS,
# comma-separated) met, so a second run starts without pip or the network.
venv_is_current() {
  # -I: the checkout's own veille.egg-info (in the current folder) must not stand in for the
  # installed distribution.
  "$1" -I - "$REPO_ROOT" "$2" <<'PY' 2>/dev/null
import importlib.metadata as metadata
import json
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement

root, extras = Path(sys.argv[1]), [e for e in sys.argv[2].split(",") if e]
project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
wanted = list(project["dependencies"])
for extra in extras:
    wanted += project["optional-dependencies"][extra]
distribution = metadata.distribution("veille")
installed = json.loads(distribution.read_text("direct_url.json") or "{}")
if installed.get("url") != root.resolve().as_uri():
    sys.exit(1)
scripts = {e.name: e.value for e in distribution.entry_points if e.group == "console_scripts"}
if scripts != project.get("scripts", {}):
    sys.exit(1)
for line in wanted:
    requirement = Requirement(line)
    if requirement.marker and not requirement.marker.evaluate({"extra": ""}):
        continue
    if metadata.version(requirement.name) not in requirement.specifier:
        sys.exit(1)
PY
}

# ensure_venv [EXTRAS]: the virtual environment with Veille installed (editable) and the
# requirements of EXTRAS (e.g. test); pip runs only when something is missing or out of date.
# Sets VENV to its folder and puts its bin/ first on PATH.
ensure_venv() {
  local extras=${1:-} venv=${VEILLE_VENV:-$REPO_ROOT/.venv}
  local python=$venv/bin/python
  VENV=$venv
  if [[ ! -x $python ]]; then
    local base=${PYTHON:-python3}
    command -v "$base" >/dev/null 2>&1 || die "$base not found: install Python 3.11 or newer"
    "$base" -c 'import sys; sys.exit(sys.version_info < (3, 11))' ||
      die "$base is $("$base" --version 2>&1): Veille needs Python 3.11 or newer"
    # Debian's python3 has no venv module without python3-venv
    "$base" -c 'import ensurepip' 2>/dev/null || apt_install python3-venv
    log "creating $venv"
    "$base" -m venv "$venv"
    "$python" -m pip install -q --disable-pip-version-check --upgrade pip
  fi
  if venv_is_current "$python" "$extras"; then
    log "Python packages up to date in $venv"
  else
    log "installing Veille${extras:+ with [$extras]} into $venv"
    "$python" -m pip install -q --disable-pip-version-check -e "$REPO_ROOT${extras:+[$extras]}"
  fi
  export PATH="$venv/bin:$PATH"
}

# ensure_elasticsearch: sets VEILLE_ES_URL. When it is unset, starts scripts/es-local (or
# reuses the node running there) and sets ES_STARTED_HERE=1 only if this call started it.
ES_STARTED_HERE=0
ensure_elasticsearch() {
  if [[ -n ${VEILLE_ES_URL:-} ]]; then
    log "Elasticsearch at $VEILLE_ES_URL (VEILLE_ES_URL)"
    return 0
  fi
  if "$REPO_ROOT/scripts/es-local" status >/dev/null 2>&1; then
    log "reusing the local Elasticsearch that is already running"
  else
    need_commands java:openjdk-17-jdk-headless mvn:maven
    ES_STARTED_HERE=1
  fi
  VEILLE_ES_URL=$("$REPO_ROOT/scripts/es-local" start)
  export VEILLE_ES_URL
  log "Elasticsearch at $VEILLE_ES_URL"
}

# stop_elasticsearch_if_started: stops the node only when ensure_elasticsearch started it.
stop_elasticsearch_if_started() {
  if ((ES_STARTED_HERE)); then
    "$REPO_ROOT/scripts/es-local" stop || true
    ES_STARTED_HERE=0
  fi
}
