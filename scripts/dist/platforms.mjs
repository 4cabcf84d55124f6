// The platforms napi-h3 ships prebuilt: one npm/<name>/ package each, named as napi-rs names them
// (the loader binding.js looks for `napi-h3-<name>`). package.json's napi.targets lists the triples.
export const platforms = [
  { name: 'linux-x64-gnu', triple: 'x86_64-unknown-linux-gnu', arch: 'x64', libc: 'glibc' },
  { name: 'linux-arm64-gnu', triple: 'aarch64-unknown-linux-gnu', arch: 'arm64', libc: 'glibc' },
  { name: 'linux-x64-musl', triple: 'x86_64-unknown-linux-musl', arch: 'x64', libc: 'musl' },
  { name: 'linux-arm64-musl', triple: 'aarch64-unknown-linux-musl', arch: 'arm64', libc: 'musl' }
]

/** This machine's platform name, as napi-rs spells it (linux-x64-gnu, linux-arm64-musl…). */
export function localPlatform () {
  if (process.platform !== 'linux') throw new Error(`napi-h3 ships Linux builds only, not ${process.platform}`)
  // process.report names the glibc version where the runtime is linked against glibc.
  const glibc = process.report?.getReport?.().header?.glibcVersionRuntime
  return `linux-${process.arch}-${glibc ? 'gnu' : 'musl'}`
}
