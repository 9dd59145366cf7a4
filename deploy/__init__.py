"""The toolkit behind `rasax-deploy`: settings and secrets, rendering, images, the Docker runtime.

Planning (what files to write, which containers with which settings, in which order) is pure and
lives apart from the thin layers that touch the disk and the Docker engine, so it is tested
without either.
"""

from pathlib import Path

# Where the package is installed from. With `pip install -e .` this is the checkout, which the
# project image is built from (deploy/images.py); from a wheel it is site-packages. Everything
# else the CLI reads (templates/, images/, ansible/, compose-spec/) is package data under deploy/.
SOURCE_ROOT = Path(__file__).resolve().parent.parent
TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
DEFAULT_DIR = "/etc/rasa"
