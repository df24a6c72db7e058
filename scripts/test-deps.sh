#!/usr/bin/env bash
# Installs the Debian packages the tests need when they are missing:
# chromium (the web UI's end-to-end test drives it headless) and graphviz
# (draws docs/state-machine.svg). Idempotent; `make test` and .ci/run call it.
set -euo pipefail
need=()
[ -x /usr/bin/chromium ] || need+=(chromium)
command -v dot >/dev/null || need+=(graphviz)
[ ${#need[@]} -eq 0 ] && exit 0
if ! command -v apt-get >/dev/null; then
  echo "missing ${need[*]}: install them with your package manager (the browser test needs chromium)" >&2
  exit 1
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "installing ${need[*]} (for the browser test and the state diagram)..." >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq >/dev/null
$sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
