# Debian packages and the Python package with its test extra. No nginx and no docker-compose:
# the tests check nginx configs with the stack's nginx image and get docker-compose themselves.
need=()
command -v pg_ctlcluster >/dev/null || need+=(postgresql)
command -v rabbitmq-server >/dev/null || need+=(rabbitmq-server)
command -v redis-server >/dev/null || need+=(redis-server)
command -v git >/dev/null || need+=(git)  # the Ansible role ships the checkout with git archive
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
python -m pip install -q --disable-pip-version-check -e '.[test]'
