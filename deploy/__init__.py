"""The toolkit behind `rasax-deploy`: settings and secrets, rendering, images, the Docker runtime.

Planning (what files to write, which containers with which settings, in which order) is pure and
lives apart from the thin layers that touch the disk and the Docker engine, so it is tested
without either.
"""

from pathlib import Path

# The repository checkout this package runs from (pip install -e): templates/ and the Dockerfile.
SOURCE_ROOT = Path(__file__).resolve().parent.parent
TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
DEFAULT_DIR = "/etc/rasa"
