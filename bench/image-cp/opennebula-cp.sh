#!/bin/bash
# OpenNebula's way of registering an image with the fs datastore driver, for the benchmark
# bench/image-cp/run.ts, which times it against ours on the same machine. The steps follow
# docs/opennebula/image-datastore.md (cp local mode, cp bridge mode, downloader): the source's type
# is sniffed from a second read of its first lines, the stream goes through curl (or cat for a
# file), its MD5 is taken on the way by a tee into `openssl dgst -md5`, it is gunzipped when the
# sniff said gzip, and written to the destination (local mode) or piped to `ssh BRIDGE dd
# bs=64k conv=sparse` into a staging file that is then moved into place (bridge mode). Local mode
# then digs holes (`fallocate -d`); both guess the format with `qemu-img info`, as fs does (no -f).
# DRIVER is unset, so fs converts nothing. Prints "<destination> <format>" like fs/cp.
#
#   opennebula-cp.sh local URL DST MD5
#   opennebula-cp.sh bridge FILE DST STAGING MD5 ssh [ssh options...] user@host
set -e -o pipefail
export LANG=C

mode=$1
shift
case "$mode" in
local)
    src=$1 dst=$2 md5=$3
    read_source() { curl --fail -sS -k -L --retry 3 --retry-delay 3 "$@" "$src"; }
    ;;
bridge)
    src=$1 dst=$2 staging=$3 md5=$4
    shift 4
    ssh_cmd=("$@")
    read_source() { cat "$src"; }
    ;;
*)
    echo "usage: $0 local URL DST MD5 | bridge FILE DST STAGING MD5 ssh..." >&2
    exit 2
    ;;
esac

# The downloader's type sniff: a separate read of the first 1024 lines (head closes the pipe early,
# so the reader's own status is not checked).
mime=$( (read_source 2>/dev/null || true) | head -n 1024 | file -b --mime-type -)
case "$mime" in
application/gzip | application/x-gzip) decompress=(gunzip -c -) ;;
*) decompress=(cat) ;;
esac

# The digest is taken on the way (downloader.sh uses a process substitution; a FIFO lets this
# script wait for the digest to be written, which OpenNebula does not).
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
hash_file=$work/md5 fifo=$work/stream
mkfifo "$fifo"
openssl dgst -md5 <"$fifo" | awk '{ print $NF }' >"$hash_file" &
digest=$!
if [ "$mode" = local ]; then
    read_source --retry-all-errors | tee "$fifo" | "${decompress[@]}" >"$dst"
else
    read_source | tee "$fifo" | "${decompress[@]}" |
        "${ssh_cmd[@]}" dd of="$staging" bs=64k conv=sparse status=none
fi
wait "$digest"
if [ "$(cat "$hash_file")" != "$md5" ]; then
    echo "Hash does not match" >&2
    exit 1
fi

if [ "$mode" = local ]; then
    fallocate -d "$dst" || true
    format=$(qemu-img info "$dst" | awk '/^file format:/ { print $3; exit }')
else
    "${ssh_cmd[@]}" mkdir -p "$(dirname "$dst")" "&&" mv -f "$staging" "$dst"
    format=$("${ssh_cmd[@]}" qemu-img info "$dst" | awk '/^file format:/ { print $3; exit }')
fi
[ -n "$format" ] || {
    echo "Unknown image format src=$src" >&2
    exit 1
}
echo "$dst $format"
