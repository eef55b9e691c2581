#!/usr/bin/env bash
# Builds the viewer's WebAssembly package (lamar-wasm + wasm-bindgen glue) into
# target/lamar-web/pkg, where `lamar view` and `lamar demo` find it.
# Needs: rustup target add wasm32-unknown-unknown; cargo install wasm-bindgen-cli --version 0.2.130
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --locked -p lamar-wasm --target wasm32-unknown-unknown --profile web
wasm-bindgen --target no-modules --remove-name-section --remove-producers-section \
  --out-dir target/lamar-web/pkg target/wasm32-unknown-unknown/web/lamar_wasm.wasm
ls -l target/lamar-web/pkg
