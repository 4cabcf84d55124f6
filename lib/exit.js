'use strict'
// `process.exit()` ends the process without the environment teardown that force-stops servers
// and clients in Rust (src/napi/teardown.rs; that teardown does run for workers and a normal
// exit). Close the live ones on 'exit' so their peers get a CONNECTION_CLOSE at once instead of
// waiting for their idle timeout.

const live = new Set()
let listening = false

/** Close `native` (a NativeServer or NativeClient) if the process exits while it is live. */
function closeOnExit (native) {
  if (!listening) {
    listening = true
    process.once('exit', closeAll)
  }
  live.add(native)
}

/** `native` was stopped or closed: nothing left to do at exit. */
function forget (native) {
  live.delete(native)
}

function closeAll () {
  for (const native of live) {
    try { native.closeNow() } catch {}
  }
  live.clear()
}

module.exports = { closeOnExit, forget }
