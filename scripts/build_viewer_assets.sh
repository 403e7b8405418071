#!/usr/bin/env bash
# Rebuild the viewer's vendored 3D library: partdistill_cli/assets/viewer/three.min.js (three.js + its
# OrbitControls, one minified IIFE defining the global `PDThree`) and three's licence beside it.
# Needs node + npm and the npm registry; node_modules live in a temporary folder, never in the repository.
# Bump the pinned versions here, run this script, and commit the two files it writes.
set -euo pipefail
THREE_VERSION=0.187.0
ESBUILD_VERSION=0.28.2

here="$(cd "$(dirname "$0")" && pwd)"
assets="$here/../partdistill_cli/assets/viewer"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

cd "$work"
npm init -y >/dev/null
npm install --silent --no-audit --no-fund --save-exact "three@$THREE_VERSION" "esbuild@$ESBUILD_VERSION"
cp "$here/viewer/three_entry.js" entry.js
npx --no-install esbuild entry.js --bundle --minify --format=iife --global-name=PDThree \
  --target=es2020 --legal-comments=none --outfile=three.min.js
{
  echo "/* three.js $THREE_VERSION (https://threejs.org, MIT licence: three.LICENSE) with OrbitControls,"
  echo "   bundled by scripts/build_viewer_assets.sh with esbuild $ESBUILD_VERSION. */"
  cat three.min.js
} >"$assets/three.min.js"
cp node_modules/three/LICENSE "$assets/three.LICENSE"
echo "wrote $assets/three.min.js ($(wc -c <"$assets/three.min.js") bytes) and three.LICENSE"
