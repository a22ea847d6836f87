#!/usr/bin/env bash
# Builds the one-storage artifact on the controller from a checkout, without the npm registry:
# dist/ compiled with the checkout's TypeScript into a staging directory (the checkout's own dist/
# is left alone), and the checkout's node_modules copied and pruned to the production dependencies
# (better-sqlite3's native module is the one built for this node, so the hosts must run the same
# Node major/ABI and arch: the manifest records them and the role checks). The tarball is
# reproducible (sorted, fixed mtime and owners, gzip -n), so rebuilding an unchanged checkout
# leaves the artifact untouched.
#
# usage: build-artifact.sh --source DIR --out DIR [--version V]
# Prints one JSON line: {"artifact":..., "manifest":..., "version":..., "sha256":..., "changed":bool}
set -euo pipefail

source_dir="" out_dir="" version=""
while [ $# -gt 0 ]; do
  case "$1" in
    --source) source_dir=$2; shift 2 ;;
    --out) out_dir=$2; shift 2 ;;
    --version) version=$2; shift 2 ;;
    *) echo "build-artifact: unknown argument $1 (usage: --source DIR --out DIR [--version V])" >&2; exit 2 ;;
  esac
done
if [ -z "$source_dir" ] || [ -z "$out_dir" ]; then
  echo "build-artifact: --source and --out are required" >&2
  exit 2
fi
source_dir=$(cd "$source_dir" && pwd)
for f in package.json package-lock.json node_modules/typescript/bin/tsc node_modules/better-sqlite3/package.json; do
  if [ ! -e "$source_dir/$f" ]; then
    echo "build-artifact: $source_dir/$f is missing: run npm ci in the checkout first" >&2
    exit 1
  fi
done
[ -n "$version" ] || version=$(node -p "require('$source_dir/package.json').version")
case "$version" in
  *[!A-Za-z0-9.+~-]*) echo "build-artifact: version '$version' has characters outside [A-Za-z0-9.+~-]" >&2; exit 2 ;;
esac
arch=$(node -p process.arch)
abi=$(node -p process.versions.modules)
name="one-storage-$version-linux-$arch-node$abi"
mkdir -p "$out_dir"
out_dir=$(cd "$out_dir" && pwd)

stage=$(mktemp -d "${TMPDIR:-/tmp}/one-storage-artifact.XXXXXX")
trap 'rm -rf "$stage"' EXIT
pkg="$stage/$version"  # the top directory is the version: it unpacks to /opt/one-storage/<version>/
mkdir -p "$pkg"

node "$source_dir/node_modules/typescript/bin/tsc" -p "$source_dir/tsconfig.build.json" --outDir "$pkg/dist"
cp "$source_dir/package-lock.json" "$pkg/"
node -e '
  const fs = require("fs");
  const [src, dst, version] = process.argv.slice(1);
  const p = JSON.parse(fs.readFileSync(src, "utf8"));
  p.version = version;
  delete p.scripts; // nothing runs on the hosts: no prepare/build step
  fs.writeFileSync(dst, JSON.stringify(p, null, 2) + "\n");
' "$source_dir/package.json" "$pkg/package.json" "$version"
# The production dependency tree as npm resolves it from the lockfile (no registry access), copied
# from the checkout's node_modules: each listed package directory with its relative path.
(cd "$source_dir" && npm ls --omit=dev --all --parseable --offline) | while IFS= read -r dir; do
  rel=${dir#"$source_dir"/}
  case "$rel" in node_modules/*) (cd "$source_dir" && cp -a --parents "$rel" "$pkg/") ;; esac
done
# Build leftovers of the native module (sources, object files) are not needed at run time.
rm -rf "$pkg/node_modules/better-sqlite3/deps" "$pkg/node_modules/better-sqlite3/src" \
  "$pkg/node_modules/better-sqlite3/build/Release/obj.target" "$pkg/node_modules/better-sqlite3/build/Release/test_extension.node" "$pkg/node_modules/better-sqlite3/build/Release/.deps" \
  "$pkg/node_modules/.package-lock.json"
# The native module must load with this node, or the hosts would fail at start-up.
node -e 'const D = require(process.argv[1]); new D(":memory:").close()' "$pkg/node_modules/better-sqlite3"
cp "$source_dir/README.md" "$pkg/" 2>/dev/null || true
chmod -R u=rwX,go=rX "$pkg"
chmod 0755 "$pkg"/dist/cli/src/main.js "$pkg"/dist/agent/src/main.js "$pkg"/dist/coordinator/src/main.js

epoch=$(git -C "$source_dir" log -1 --format=%ct 2>/dev/null || echo 0)
tar --sort=name --mtime="@$epoch" --owner=0 --group=0 --numeric-owner -C "$stage" -cf - "$version" \
  | gzip -9n >"$stage/$name.tar.gz"
sha=$(sha256sum "$stage/$name.tar.gz" | cut -d' ' -f1)

artifact="$out_dir/$name.tar.gz"
manifest="$artifact.json"
changed=true
if [ -f "$artifact" ] && [ -f "$manifest" ] && [ "$(sha256sum "$artifact" | cut -d' ' -f1)" = "$sha" ]; then
  changed=false
else
  mv "$stage/$name.tar.gz" "$artifact"
  node -e '
    const [file, version, sha256, name] = process.argv.slice(1);
    const m = { name, version, sha256, node: process.versions.node, nodeMajor: Number(process.versions.node.split(".")[0]),
      nodeAbi: process.versions.modules, arch: process.arch, topDir: version };
    require("fs").writeFileSync(file, JSON.stringify(m, null, 2) + "\n");
  ' "$manifest" "$version" "$sha" "$name"
fi
printf '{"artifact":"%s","manifest":"%s","version":"%s","sha256":"%s","changed":%s}\n' \
  "$artifact" "$manifest" "$version" "$sha" "$changed"
