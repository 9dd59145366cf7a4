# Docker engine, docker-compose 1.29 and mmdebstrap for the smoke deploy (tests/e2e); then the
# stack's images, built locally from a Debian base (no registry here). Both are cached: a second
# run installs nothing and builds only images whose content changed.
docker_need=()
command -v dockerd >/dev/null || docker_need+=(docker.io)
command -v docker-compose >/dev/null || docker_need+=(docker-compose)
command -v mmdebstrap >/dev/null || docker_need+=(mmdebstrap)
if [ ${#docker_need[@]} -gt 0 ]; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${docker_need[@]}" >/dev/null
fi
bash deploy/start-dockerd.sh
images_started=$(date +%s)
rasax-deploy images build
echo "images ready in $(( $(date +%s) - images_started ))s"
