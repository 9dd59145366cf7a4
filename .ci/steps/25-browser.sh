# The web UI's browser tests (tests/ui) drive Debian's chromium through Playwright; Playwright's
# own browser download is never used. The UI itself is built with the host's Node.js and npm
# (deploy/ui_build.py) from frontend/package-lock.json.
if [ ! -x /usr/bin/chromium ]; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi
node --version >/dev/null 2>&1 || { echo "the web UI is built with Node.js >= 20.19 and npm: neither is installed" >&2; exit 1; }
