#!/bin/sh
# The rig registry: one storage served twice, open on port 5000 and as Amazon ECR's registry on
# 5001 (basic auth: user AWS, password ECR_TOKEN, the token the AWS emulator hands out, so only a
# client that got a token from the emulator pulls there).
set -eu
htpasswd -Bbc /run/ecr.htpasswd AWS "${ECR_TOKEN:-123456789012-auth-token}" 2>/dev/null
/usr/bin/docker-registry serve /etc/docker/registry/config-ecr.yml &
exec /usr/bin/docker-registry serve /etc/docker/registry/config.yml
