'use strict'
// Builds the release addon when it is missing or older than the Rust sources.
// Runs from `npm install` (prepare) and before `npm test`.
// Only in a source tree (a clone: Cargo.toml and src/ present). An installed package (from the
// registry or a tarball) has neither: it ships the prebuilt addon, so this exits 0 silently.
const { spawnSync } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')

const root = path.join(__dirname, '..')
if (!fs.existsSync(path.join(root, 'Cargo.toml')) || !fs.existsSync(path.join(root, 'src'))) process.exit(0)

const addon = fs.readdirSync(root).find((f) => /^napi-h3\..+\.node$/.test(f))

function newestSource () {
  let newest = 0
  const walk = (dir) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name)
      if (e.isDirectory()) walk(p)
      else newest = Math.max(newest, fs.statSync(p).mtimeMs)
    }
  }
  walk(path.join(root, 'src'))
  for (const f of ['Cargo.toml', 'Cargo.lock', 'build.rs']) {
    const p = path.join(root, f)
    if (fs.existsSync(p)) newest = Math.max(newest, fs.statSync(p).mtimeMs)
  }
  return newest
}

const stale = !addon || !fs.existsSync(path.join(root, 'binding.js')) ||
  fs.statSync(path.join(root, addon)).mtimeMs < newestSource()
if (!stale && !process.argv.includes('--force')) process.exit(0)

console.log('napi-h3: building the native addon (cargo, release)…')
const napi = path.join(root, 'node_modules', '.bin', 'napi')
if (!fs.existsSync(napi)) {
  console.error('napi-h3: @napi-rs/cli is missing; run `npm install` first')
  process.exit(1)
}
const r = spawnSync(napi, ['build', '--platform', '--release', '--js', 'binding.js', '--dts', 'binding.d.ts'], { cwd: root, stdio: 'inherit' })
if (r.status !== 0) {
  console.error('napi-h3: build failed (is a Rust toolchain installed? https://rustup.rs)')
  process.exit(r.status || 1)
}
