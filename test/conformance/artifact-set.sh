#!/usr/bin/env bash
# artifact-set.sh BASE_SET E2E_IMAGES_TAR OUT_DIR: an artifact set for the conformance run, derived from the one
# `make artifacts` builds: OUT_DIR has a symbolic link to every file of BASE_SET, images/e2e-images.tar (a link to
# the tarball test/conformance/images.sh writes), and a manifest.json that is BASE_SET's plus that tarball: one
# images entry named after the first line of the images.txt beside it (kforge-images.service's health check
# looks for that name; the tarball holds them all) and its files entry (sha256, size).
# Cached: OUT_DIR/.inputs records what it was made from (the base manifest's sha256, the tarball's, the name, this
# script's); a run with the same inputs does nothing. Written in OUT_DIR.tmp and renamed into place.
set -euo pipefail
[ $# -eq 3 ] || { echo "usage: $0 BASE_SET E2E_IMAGES_TAR OUT_DIR" >&2; exit 2; }
log() { printf '%s artifact-set: %s\n' "$(date +%H:%M:%S)" "$*"; }
die() { log "$*" >&2; exit 1; }
[ -f "$1/manifest.json" ] || die "$1 has no manifest.json (make artifacts builds the set)"
[ -f "$2" ] || die "no $2 (test/conformance/images.sh builds it)"
base=$(realpath "$1") tar=$(realpath "$2") out=$3
names=$(dirname "$tar")/images.txt
[ -s "$names" ] || die "no image names in $names"
name=$(head -n1 "$names")
rel=images/e2e-images.tar

tar_sha=$(sha256sum "$tar" | cut -d' ' -f1)
tar_size=$(stat -L -c %s "$tar")
inputs=$(printf 'base %s\nmanifest %s\ntar %s\nsha256 %s\nname %s\nscript %s\n' "$base" \
  "$(sha256sum "$base/manifest.json" | cut -d' ' -f1)" "$tar" "$tar_sha" "$name" \
  "$(sha256sum "${BASH_SOURCE[0]}" | cut -d' ' -f1)")
if [ -f "$out/manifest.json" ] && [ "$(cat "$out/.inputs" 2>/dev/null)" = "$inputs" ]; then
  log "cached: $out"; exit 0
fi

# The manifest with one more image and file: jq, else python3, else jq from apt (as root).
if ! command -v jq >/dev/null && ! command -v python3 >/dev/null; then
  [ "$(id -u)" = 0 ] || die "needs jq or python3 to write the manifest (apt-get install jq)"
  log "installing jq"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq jq >/dev/null
fi
add_image() {
  if command -v jq >/dev/null; then
    jq --arg name "$name" --arg path "$rel" --arg sha "$tar_sha" --argjson size "$tar_size" '
      if any(.images[]?; .path == $path) or any(.files[]; .path == $path) then error("\($path) is already in the set") else . end
      | .images += [{name: $name, path: $path}] | .files += [{path: $path, sha256: $sha, size: $size}]' "$1"
  else
    python3 - "$1" "$name" "$rel" "$tar_sha" "$tar_size" <<'PY'
import json, sys
src, name, path, sha, size = sys.argv[1:]
m = json.load(open(src))
if any(i["path"] == path for i in m.get("images", [])) or any(f["path"] == path for f in m["files"]):
    sys.exit(path + " is already in the set")
m.setdefault("images", []).append({"name": name, "path": path})
m["files"].append({"path": path, "sha256": sha, "size": int(size)})
json.dump(m, sys.stdout, indent=2)
print()
PY
  fi
}

tmp=$out.tmp
trap 'rm -rf "$tmp"' EXIT # a failed run leaves nothing half-written
rm -rf "$tmp"
mkdir -p "$tmp/images"
(cd "$base" && find . -mindepth 1 \( -type f -o -type l \) ! -path ./manifest.json -printf '%P\n') | while read -r f; do
  mkdir -p "$tmp/$(dirname "$f")"
  ln -s "$base/$f" "$tmp/$f"
done
ln -s "$tar" "$tmp/$rel"
add_image "$base/manifest.json" > "$tmp/manifest.json"
printf '%s\n' "$inputs" > "$tmp/.inputs"
# A set of other inputs at OUT_DIR is moved aside first: a reader sees the old set or the new one, never a mix.
if [ -e "$out" ]; then rm -rf "$out.old"; mv -T "$out" "$out.old"; fi
mv -T "$tmp" "$out"
rm -rf "$out.old"
log "done: $out ($rel: $(wc -l < "$names") images, listed in the manifest as $name)"
