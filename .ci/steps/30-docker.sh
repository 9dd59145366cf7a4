# Docker engine and mmdebstrap for the Docker tier (tests/e2e), as `rasax-deploy up` would install
# them; then the stack's images, Rasa's included, built locally from Debian bases (no registry
# here). Both are cached: a second run installs nothing and builds only images whose content
# changed. From nothing, the Rasa images take most of the time (README, "Rasa images").
# docker-compose is not installed here: the smoke test installs it for its own step.
docker_need=()
command -v dockerd >/dev/null || docker_need+=(docker.io)
command -v mmdebstrap >/dev/null || docker_need+=(mmdebstrap)
if [ ${#docker_need[@]} -gt 0 ]; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${docker_need[@]}" >/dev/null
fi
bash deploy/start-dockerd.sh
images_started=$(date +%s)
rasax-deploy images build
echo "images ready in $(( $(date +%s) - images_started ))s"
