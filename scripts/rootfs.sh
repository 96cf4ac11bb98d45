#!/usr/bin/env bash
# An image's root filesystem, for the Dockerfiles' `FROM scratch`: the release binary at /NAME
# (scripts/release.sh), the CA bundle, /etc/passwd and /etc/group with nonroot (65532) and /tmp,
# the files tests/kube-node/image.py puts in the tests' images.
#   bash scripts/rootfs.sh DIR PACKAGE   (the package's binary has the package's name)
set -euo pipefail
dir=${1:?usage: rootfs.sh DIR PACKAGE} name=${2:?usage: rootfs.sh DIR PACKAGE}
bin=$(bash "$(dirname "$0")/release.sh" -p "$name")
mkdir -p "$dir/etc/ssl/certs" "$dir/home/nonroot" "$dir/tmp"
chmod 1777 "$dir/tmp"
cp "$bin/$name" "$dir/"
cp /etc/ssl/certs/ca-certificates.crt "$dir/etc/ssl/certs/"
printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >"$dir/etc/passwd"
printf 'root:x:0:\nnonroot:x:65532:\n' >"$dir/etc/group"
