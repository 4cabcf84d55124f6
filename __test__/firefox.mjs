// Headless Firefox (Debian's firefox-esr) driven over WebDriver BiDi, with no npm dependency: Firefox
// is launched with --remote-debugging-port=0 and a fresh profile, the "WebDriver BiDi listening on
// ws://..." line is read from its stderr, and BiDi is spoken over the WebSocket client of
// ./browser.mjs. The returned object has the same shape as launchChromium's (goto, evaluate, newPage,
// close), so the WebTransport cases run unchanged on both. Every wait is bounded; close() kills
// Firefox's whole process group and removes its profile dir.
import { spawn } from 'node:child_process'
import { X509Certificate } from 'node:crypto'
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { connectWebSocket, trackBrowser, withTimeout } from './browser.mjs'

export const firefoxPath = process.env.H3_FIREFOX || '/usr/bin/firefox-esr'
export const haveFirefox = existsSync(firefoxPath)

// Quiet, deterministic startup (the remote agent adds its own recommended prefs on top of these).
const basePrefs = {
  'browser.shell.checkDefaultBrowser': false,
  'browser.startup.page': 0,
  'browser.startup.homepage_override.mstone': 'ignore',
  'browser.tabs.warnOnClose': false,
  'datareporting.policy.dataSubmissionEnabled': false,
  'toolkit.telemetry.reportingpolicy.firstRun': false,
  'app.update.disabledForTesting': true,
  'app.normandy.enabled': false,
  'browser.newtabpage.enabled': false
}

/**
 * Prefs and a certificate exception for fetch() over HTTP/3 to 127.0.0.1:port without a TCP origin:
 * the alt-svc mapping sends requests for 127.0.0.1 straight to h3 on that port; Firefox turns HTTP/3
 * off when it finds third-party roots (there are none here, but the check reads the OS store);
 * cert_override.txt holds the exception a user would add on the "Accept the risk" page.
 */
export function h3FetchProfile (server) {
  return {
    prefs: {
      'network.http.http3.enable': true,
      'network.http.http3.alt-svc-mapping-for-testing': `127.0.0.1;h3=:${server.port}`,
      'network.http.http3.disable_when_third_party_roots_found': false
    },
    certOverrides: [{ host: '127.0.0.1', port: server.port, certPem: server.certificatePem }]
  }
}

// One line of cert_override.txt: "host:port:<origin attributes>", the SHA-256 OID, the certificate's
// fingerprint as colon-separated upper-case hex, then an empty field (the old override bits).
function certOverrideLine ({ host, port, certPem }) {
  const fingerprint = new X509Certificate(certPem).fingerprint256
  return `${host}:${port}:\tOID.2.16.840.1.101.3.4.2.1\t${fingerprint}\t\n`
}

function writeProfile (dir, prefs, certOverrides) {
  const all = { ...basePrefs, ...prefs }
  writeFileSync(path.join(dir, 'user.js'), Object.entries(all).map(([k, v]) => `user_pref(${JSON.stringify(k)}, ${JSON.stringify(v)});\n`).join(''))
  if (certOverrides.length) {
    writeFileSync(path.join(dir, 'cert_override.txt'), '# PSM Certificate Override Settings file\n# This is a generated file!  Do not edit.\n' + certOverrides.map(certOverrideLine).join(''))
  }
}

/** A BiDi connection: send(method, params) → result, on(fn) for events. */
function bidiClient (ws, timeout) {
  let nextId = 1
  const pending = new Map()
  const listeners = new Set()
  ws.onmessage = (text) => {
    let msg
    try { msg = JSON.parse(text) } catch { return }
    if (msg.id !== undefined && pending.has(msg.id)) {
      const p = pending.get(msg.id)
      pending.delete(msg.id)
      if (msg.type === 'error') p.reject(new Error(`BiDi ${p.method}: ${msg.error}: ${msg.message}`))
      else p.resolve(msg.result)
    } else if (msg.type === 'event') {
      for (const l of listeners) l(msg)
    }
  }
  ws.onclose = () => { for (const p of pending.values()) p.reject(new Error(`BiDi ${p.method}: connection closed`)); pending.clear() }
  return {
    send (method, params = {}, ms = timeout) {
      const id = nextId++
      const p = new Promise((resolve, reject) => pending.set(id, { resolve, reject, method }))
      ws.send(JSON.stringify({ id, method, params }))
      return withTimeout(p, ms, `BiDi ${method}`).finally(() => pending.delete(id))
    },
    on (fn) { listeners.add(fn); return () => listeners.delete(fn) }
  }
}

/** A tab's API over one browsing context, shaped like ./browser.mjs's pages. */
function pageApi (bidi, context, timeout) {
  return {
    context,
    send: (method, params, ms) => bidi.send(method, params, ms),
    /** Navigates the tab and waits for its load event. */
    async goto (url, { timeout: ms = timeout } = {}) {
      await bidi.send('browsingContext.navigate', { context, url, wait: 'complete' }, ms)
    },
    /**
     * Evaluates an expression in the page; awaits a returned promise; returns the value. The value
     * crosses as JSON text (BiDi's own serialization would need decoding into plain objects).
     */
    async evaluate (expression, { timeout: ms = timeout } = {}) {
      const wrapped = `(async () => JSON.stringify({ v: await (${expression}) }))()`
      const r = await bidi.send('script.evaluate', { expression: wrapped, target: { context }, awaitPromise: true, resultOwnership: 'none', userActivation: true }, ms)
      if (r.type === 'exception') throw new Error(`in page: ${r.exceptionDetails?.text ?? JSON.stringify(r.exceptionDetails)}`)
      return JSON.parse(r.result.value).v
    },
    /** Closes the tab, as a user would. */
    async close () {
      await bidi.send('browsingContext.close', { context }).catch(() => {})
    }
  }
}

/**
 * Launches headless Firefox with a fresh profile and one tab (about:blank).
 * prefs: extra user.js prefs; certOverrides: [{ host, port, certPem }] → cert_override.txt.
 * timeout bounds each command, startTimeout the start (up to a usable session).
 * Returns { evaluate(expr), goto(url), newPage(url), stderr(), close() }: the first two act on the
 * first tab; newPage opens another, with the same two and its own close().
 */
export async function launchFirefox ({ prefs = {}, certOverrides = [], args = [], timeout = 20000, startTimeout = 90000 } = {}) {
  if (!haveFirefox) throw new Error(`Firefox not found at ${firefoxPath}`)
  const profileDir = mkdtempSync(path.join(os.tmpdir(), 'napi-h3-firefox-'))
  writeProfile(profileDir, prefs, certOverrides)
  const flags = ['--headless', '--no-remote', '--profile', profileDir, '--remote-debugging-port=0', ...args, 'about:blank']
  // Own process group, so close() takes the content processes down with it. MOZ_CRASHREPORTER_DISABLE:
  // no crash reporter dialog or minidump upload attempts from a killed child.
  const child = spawn(firefoxPath, flags, { stdio: ['ignore', 'ignore', 'pipe'], detached: true, env: { ...process.env, MOZ_CRASHREPORTER_DISABLE: '1' } })
  let stderrText = ''
  let exited = false
  const exitPromise = new Promise((resolve) => child.once('exit', (code, signal) => { exited = true; resolve({ code, signal }) }))
  child.on('error', () => {})
  let ws = null
  const browser = {
    pid: child.pid,
    profileDir,
    flags,
    stderr: () => stderrText,
    killNow () {
      try { process.kill(-child.pid, 'SIGKILL') } catch {}
      try { child.kill('SIGKILL') } catch {}
      try { rmSync(profileDir, { recursive: true, force: true, maxRetries: 3 }) } catch {}
    }
  }
  const tracking = trackBrowser(browser)

  try {
    const wsUrl = await withTimeout(new Promise((resolve, reject) => {
      child.stderr.setEncoding('utf8')
      child.stderr.on('data', (s) => {
        stderrText = (stderrText + s).slice(-64 * 1024) // keep draining, keep the tail for diagnostics
        const m = /WebDriver BiDi listening on (ws:\/\/\S+)/.exec(stderrText)
        if (m) resolve(m[1])
      })
      child.once('error', reject)
      exitPromise.then(({ code, signal }) => reject(new Error(`Firefox exited (${code ?? signal}) before WebDriver BiDi was up:\n${stderrText}`)))
    }), startTimeout, 'Firefox start')

    ws = await connectWebSocket(wsUrl.replace(/\/?$/, '/session'), timeout)
    browser.webSocket = ws.kind
    const bidi = bidiClient(ws, timeout)
    // The session waits for the first window: as slow as the start itself on a loaded machine.
    await bidi.send('session.new', { capabilities: { alwaysMatch: { acceptInsecureCerts: false } } }, startTimeout)
    const { contexts } = await bidi.send('browsingContext.getTree', { maxDepth: 0 })
    const first = pageApi(bidi, contexts[0].context, timeout)

    Object.assign(browser, {
      send: first.send,
      goto: first.goto,
      evaluate: first.evaluate,
      /** Opens another tab at `url` (waits for its load event); returns { evaluate, goto, close } for it. */
      async newPage (url = 'about:blank', { timeout: ms = timeout } = {}) {
        const { context } = await bidi.send('browsingContext.create', { type: 'tab' })
        const page = pageApi(bidi, context, timeout)
        if (url !== 'about:blank') await page.goto(url, { timeout: ms })
        return page
      },
      /** browser.close over BiDi, then SIGKILL to the process group if it has not gone within 3 s; removes the profile. */
      async close () {
        if (!tracking.tracked()) return
        tracking.forget()
        if (!exited) {
          try { await bidi.send('browser.close', {}, 2000) } catch {}
          await withTimeout(exitPromise, 3000, 'Firefox exit').catch(() => {})
        }
        try { ws.close() } catch {}
        browser.killNow()
        await withTimeout(exitPromise, 3000, 'Firefox exit after SIGKILL').catch(() => {})
        child.stderr?.destroy()
        rmSync(profileDir, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 })
      }
    })
    return browser
  } catch (e) {
    tracking.forget()
    try { ws?.close() } catch {}
    browser.killNow()
    child.stderr?.destroy()
    e.message += `\n--- Firefox stderr (tail) ---\n${stderrText.slice(-4000)}`
    throw e
  }
}
