#!/usr/bin/env python3
"""Assembles a container image without a container engine, as an image archive that
`ctr images import`, `docker load`, `kind load image-archive` and `skopeo copy docker-archive:...`
all read (manifest.json, the image config and one layer, content-addressed by SHA-256).

    image.py OUT.tar NAME:TAG ENTRYPOINT-BINARY [--user UID:GID] [--ca-certs FILE]

The one layer holds the binary at /<basename>, the shared libraries it links (from `ldd`, at
their own paths; none for a static binary), /etc/passwd and /etc/group with `nonroot` (65532),
/tmp, and with --ca-certs that file at /etc/ssl/certs/ca-certificates.crt (SSL_CERT_FILE names
it). The files, user, entry point and environment match the images the Dockerfiles build.
Deterministic: the same inputs give the same digests.
"""

import argparse
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile

CA_PATH = "etc/ssl/certs/ca-certificates.crt"


def shared_libraries(binary):
    """The paths `ldd` resolves for a dynamic binary, the loader included; [] for a static one."""
    out = subprocess.run(["ldd", binary], capture_output=True, text=True)
    if out.returncode != 0:  # "not a dynamic executable"
        return []
    libs = []
    for line in out.stdout.splitlines():
        parts = line.split()
        if "=>" in parts:
            target = parts[parts.index("=>") + 1]
            if target == "not":
                sys.exit(f"image.py: {binary} needs a library ldd cannot find: {line.strip()}")
            if target.startswith("/"):
                libs.append(target)
        elif parts and parts[0].startswith("/"):
            libs.append(parts[0])
    return libs


def add_file(tar, path, data, mode=0o644):
    info = tarfile.TarInfo(path)
    info.size, info.mode, info.mtime = len(data), mode, 0
    tar.addfile(info, io.BytesIO(data))


def add_dir(tar, path, mode=0o755):
    info = tarfile.TarInfo(path)
    info.type, info.mode, info.mtime = tarfile.DIRTYPE, mode, 0
    tar.addfile(info)


def layer(binary, ca_certs):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        dirs = {"etc", "tmp", "home", "home/nonroot"}
        files = {}
        with open(binary, "rb") as f:
            files[os.path.basename(binary)] = (f.read(), 0o755)
        for lib in shared_libraries(binary):
            with open(os.path.realpath(lib), "rb") as f:
                files[lib.lstrip("/")] = (f.read(), 0o755)
        files["etc/passwd"] = (b"root:x:0:0:root:/root:/sbin/nologin\n"
                               b"nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n", 0o644)
        files["etc/group"] = (b"root:x:0:\nnonroot:x:65532:\n", 0o644)
        if ca_certs:
            with open(ca_certs, "rb") as f:
                files[CA_PATH] = (f.read(), 0o644)
        for path in files:
            parent = os.path.dirname(path)
            while parent:
                dirs.add(parent)
                parent = os.path.dirname(parent)
        for d in sorted(dirs):
            add_dir(tar, d, 0o1777 if d == "tmp" else 0o755)
        for path in sorted(files):
            data, mode = files[path]
            add_file(tar, path, data, mode)
    return buf.getvalue()


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out")
    p.add_argument("name", help="repository:tag, e.g. wxgate/wxgate-sidecar:0.1.0")
    p.add_argument("binary")
    p.add_argument("--user", default="65532:65532")
    p.add_argument("--ca-certs")
    a = p.parse_args()
    if ":" not in a.name.rsplit("/", 1)[-1]:
        sys.exit(f"image.py: {a.name!r} has no tag")
    if not os.access(a.binary, os.X_OK):
        sys.exit(f"image.py: {a.binary} is not an executable file")
    blob = layer(a.binary, a.ca_certs)
    layer_digest = hashlib.sha256(blob).hexdigest()
    env = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]
    if a.ca_certs:
        env.append("SSL_CERT_FILE=/" + CA_PATH)
    config = json.dumps({
        "architecture": "amd64",
        "os": "linux",
        "created": "1970-01-01T00:00:00Z",
        "config": {"User": a.user, "Entrypoint": ["/" + os.path.basename(a.binary)], "Env": env,
                   "WorkingDir": "/"},
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + layer_digest]},
        "history": [{"created": "1970-01-01T00:00:00Z", "created_by": "tests/kube-node/image.py"}],
    }, sort_keys=True, separators=(",", ":")).encode()
    config_digest = hashlib.sha256(config).hexdigest()
    manifest = json.dumps([{"Config": config_digest + ".json", "RepoTags": [a.name],
                            "Layers": [layer_digest + "/layer.tar"]}]).encode()
    tmp = a.out + ".tmp"
    with tarfile.open(tmp, mode="w", format=tarfile.PAX_FORMAT) as tar:
        add_dir(tar, layer_digest)
        add_file(tar, layer_digest + "/layer.tar", blob)
        add_file(tar, config_digest + ".json", config)
        add_file(tar, "manifest.json", manifest)
    os.replace(tmp, a.out)
    print(f"{a.name} sha256:{config_digest} ({len(blob) // 1024} KiB)")


if __name__ == "__main__":
    main()
