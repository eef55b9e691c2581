#!/usr/bin/env bash
# Builds the viewer's WebAssembly package (lamar-wasm + wasm-bindgen glue) into
# target/lamar-web/pkg, where `lamar view` and `lamar demo` find it.
# Needs the wasm32-unknown-unknown target and wasm-bindgen-cli 0.2.130 (installed here when
# missing; the version must equal the wasm-bindgen pin in Cargo.toml).
set -euo pipefail
cd "$(dirname "$0")/.."
version=0.2.130
rustup target add wasm32-unknown-unknown >/dev/null 2>&1 || true
if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$version" ]; then
  # Not --locked: the registry here lacks a pinned dependency of the CLI's own lock file.
  cargo install wasm-bindgen-cli --version "$version"
fi
cargo build --locked -p lamar-wasm --target wasm32-unknown-unknown --profile web
wasm-bindgen --target no-modules --remove-name-section --remove-producers-section \
  --out-dir target/lamar-web/pkg target/wasm32-unknown-unknown/web/lamar_wasm.wasm
ls -l target/lamar-web/pkg
