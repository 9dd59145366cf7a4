"""The front end's own unit tests (Vitest: frontend/src/**/*.test.ts[x]), run by the README's
test command like every other test."""

from __future__ import annotations

import subprocess


def test_vitest(ui_dist):
    from deploy.ui_build import FRONTEND

    # ui_dist ran `npm ci` from the lock file; vitest runs from node_modules, nothing is fetched.
    result = subprocess.run(["npm", "test", "--", "--reporter=dot"], cwd=FRONTEND, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, (result.stdout + result.stderr)[-5000:]
    assert " passed" in result.stdout and " failed" not in result.stdout, result.stdout[-2000:]
