#!/bin/bash
# Healthy when memcached answers "version" on its port (no client tools in the image: bash's
# /dev/tcp).
set -o errexit -o nounset -o pipefail
exec 3<>/dev/tcp/127.0.0.1/11211
printf 'version\r\n' >&3
read -r -t 3 answer <&3
[[ $answer == VERSION* ]]
