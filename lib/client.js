'use strict'
// The client: H3Client (a pool of QUIC connections, one per origin), its fetch() and
// webtransport(), and h3Fetch over shared clients.

const { closeOnExit, forget } = require('./exit.js')
const native = require('../binding.js')
const { liftError, throwLifted, configError, abortError, timeoutError, WebTransportError } = require('./errors.js')
const { noop, asBytes, toPem, flatHeaders, headerPairs, headersFromFlat, flatGet } = require('./convert.js')
const { pulledBody, prepareBody, pumpUpload } = require('./body.js')
const { WebTransportSession } = require('./webtransport.js')
const { OFFER_HEADER, ANSWER_HEADER, offerHeader, parseAnswer } = require('./wt-protocols.js')
const { clientTlsExtras, allow0RTT } = require('./tls.js')
const { HeadWaiters } = require('./client-heads.js')
const { fetchResponse } = require('./client-response.js')

const REDIRECTS = new Set([301, 302, 303, 307, 308])
const NULL_BODY = new Set([101, 103, 204, 205, 304])
const MAX_REDIRECTS = 20
const REDIRECT_MODES = ['follow', 'manual', 'error']
/** Headers that describe a body: dropped when a redirect turns the request into a GET. */
const BODY_HEADERS = ['content-type', 'content-length', 'content-encoding', 'content-language', 'content-location']
const NO_BODY = Object.freeze({ bytes: null })

function clientOptions (tls = {}, extra = {}) {
  if (tls == null || typeof tls !== 'object') throw configError('tls must be an object')
  const hashes = tls.serverCertificateHashes
  if (hashes != null && !Array.isArray(hashes)) throw configError('tls.serverCertificateHashes must be an array')
  return {
    ca: tls.ca == null ? undefined : (Array.isArray(tls.ca) ? tls.ca : [tls.ca]).map((c) => toPem(c, 'ca')),
    rejectUnauthorized: tls.rejectUnauthorized,
    // Accept the WebTransport shape ({ algorithm, value }) as well as plain bytes.
    serverCertificateHashes: hashes?.map((h) => asBytes(h && h.value !== undefined ? h.value : h)),
    idleTimeout: extra.idleTimeout,
    connectTimeout: extra.connectTimeout,
    allow0RTT: allow0RTT(extra.allow0RTT),
    ...clientTlsExtras(tls)
  }
}

function createNativeClient (options) {
  let client
  try {
    client = native.createNativeClient(options)
  } catch (e) {
    throw liftError(e)
  }
  closeOnExit(client)
  return client
}

/**
 * The protocol a session answer (flat header list) settled on: '' when none was offered or the
 * server named none; null when it named one that was not offered (or not as a String).
 */
function answeredProtocol (flat, offered) {
  if (!offered.length) return ''
  let value
  for (let i = 0; i + 1 < flat.length; i += 2) if (flat[i].toLowerCase() === ANSWER_HEADER) value = flat[i + 1]
  if (value === undefined) return ''
  const p = parseAnswer(value)
  return p !== null && offered.includes(p) ? p : null
}

function webtransportURL (url) {
  let u
  try {
    u = new URL(String(url))
  } catch {
    throw new TypeError(`webtransport: invalid URL ${JSON.stringify(String(url))}`)
  }
  if (u.protocol !== 'https:') throw new TypeError(`webtransport: needs an https: URL, got ${u.protocol}`)
  return u
}

class H3Client {
  #native
  #heads
  #closed = false
  #options
  /** Clients for WebTransport sessions with their own serverCertificateHashes, by hash set. */
  #hashClients = new Map()
  #wts = new WeakMap()

  constructor (options = {}) {
    if (options == null || typeof options !== 'object') throw configError('options must be an object')
    this.#options = options
    this.#native = createNativeClient(clientOptions(options.tls ?? {}, options))
    this.#heads = new HeadWaiters(this.#native)
    this.fetch = this.fetch.bind(this)
  }

  /** Open QUIC connections (one per origin in use). */
  get connectionCount () { return this.#native.connectionCount() }

  /** QUIC connections opened over this client's life. */
  get connectionsOpened () { return this.#native.connectionsOpened() }

  /** 0-RTT (`allow0RTT`): connections that sent early data, and how servers answered. */
  get earlyData () { return this.#native.earlyData() }

  fetch (input, init) {
    if (this.#closed) return Promise.reject(configError('client is closed', 'ERR_H3_NOT_RUNNING'))
    return clientFetch(this.#native, this.#heads, input, init)
  }

  /**
   * Open a WebTransport session. Resolves once the server accepted it; rejects with a
   * WebTransportError (code ERR_H3_WT_REJECTED, `status`) when it answered otherwise.
   * `serverCertificateHashes` (W3C shape or plain bytes) trusts a certificate by its hash.
   */
  async webtransport (url, opts = {}) {
    if (this.#closed) throw configError('client is closed', 'ERR_H3_NOT_RUNNING')
    if (opts == null || typeof opts !== 'object') throw configError('webtransport options must be an object')
    const u = webtransportURL(url)
    const offer = offerHeader(opts.protocols)
    const nat = this.#nativeFor(opts.serverCertificateHashes)
    const headers = new Headers(opts.headers ?? {})
    if (offer !== null) headers.set(OFFER_HEADER, offer)
    let open
    try {
      open = await nat.webtransport(u.href, flatHeaders(headers))
    } catch (e) {
      throw liftError(e)
    }
    if (open.session == null) {
      const err = new WebTransportError(`the server refused the WebTransport session with status ${open.status}`, { source: 'session' })
      err.code = 'ERR_H3_WT_REJECTED'
      err.status = open.status
      throw err
    }
    let wt = this.#wts.get(nat)
    if (!wt) this.#wts.set(nat, wt = nat.wt())
    const protocol = answeredProtocol(open.headers, offer !== null ? opts.protocols : [])
    const session = new WebTransportSession(wt, open.session, { established: true, protocol: protocol ?? '' })
    if (protocol === null) {
      // W3C WebTransport: a WT-Protocol the client did not offer fails the session.
      session.close({ closeCode: 0, reason: 'unexpected WT-Protocol' })
      const err = new WebTransportError('the server answered with a WT-Protocol that was not offered', { source: 'session' })
      err.code = 'ERR_H3_WT_PROTOCOL'
      throw err
    }
    return session
  }

  /** The native client trusting `hashes` (this client's own when there are none). */
  #nativeFor (hashes) {
    if (hashes == null) return this.#native
    const tls = { ...(this.#options.tls ?? {}), serverCertificateHashes: hashes }
    const key = clientOptions(tls).serverCertificateHashes.map((h) => h.toString('hex')).join(',')
    let nat = this.#hashClients.get(key)
    if (!nat) {
      nat = createNativeClient(clientOptions(tls, this.#options))
      this.#hashClients.set(key, nat)
    }
    return nat
  }

  close () {
    this.#closed = true
    const all = [this.#native, ...this.#hashClients.values()].map((n) => { forget(n); return n.close() })
    this.#hashClients.clear()
    return Promise.all(all).then(noop, throwLifted)
  }
}

/**
 * What to send, from fetch()'s `input` and `init` (validated). `url`, `method`, `headers` and
 * `prepared` (the body, see prepareBody) change as redirects are followed.
 */
function outgoingRequest (input, init) {
  if (init === null || typeof init !== 'object') init = {}
  const isReq = input instanceof Request
  let url
  try {
    url = new URL(isReq ? input.url : String(input))
  } catch {
    throw new TypeError(`h3Fetch: invalid URL ${JSON.stringify(String(input))}`)
  }
  if (url.protocol !== 'https:') throw new TypeError(`h3Fetch: HTTP/3 needs an https: URL, got ${url.protocol}`)
  if (url.username || url.password) throw new TypeError('h3Fetch: URLs with credentials are not allowed')
  let method = String(init.method ?? (isReq ? input.method : 'GET'))
  if (/^(get|head|post|put|delete|options|patch)$/i.test(method)) method = method.toUpperCase()
  const headers = new Headers(init.headers ?? (isReq ? input.headers : undefined))
  const body = 'body' in init ? init.body : (isReq ? input.body : null)
  if (body != null && (method === 'GET' || method === 'HEAD')) throw new TypeError('h3Fetch: a GET or HEAD request cannot have a body')
  const signal = init.signal ?? (isReq ? input.signal : undefined)
  const redirect = init.redirect ?? (isReq ? input.redirect : 'follow')
  if (!REDIRECT_MODES.includes(redirect)) throw new TypeError(`h3Fetch: invalid redirect mode ${redirect}`)
  const timeout = init.timeout
  if (timeout != null && !(typeof timeout === 'number' && timeout > 0)) throw new TypeError('h3Fetch: timeout must be a positive number of milliseconds')
  return { url, method, headers, body, signal, redirect, timeout, prepared: null }
}

/**
 * The abort signal and timeout of one fetch (made only when it has either): either fails the
 * wait for the head of the native request in flight (`id`), cancels that request, and leaves the
 * reason in `failed`. `cleanup` lets go of both once the response is complete.
 */
class FetchControl {
  id = -1
  failed = null
  #nat
  #heads
  #signal
  #timer
  #onAbort = () => this.fail(abortError(this.#signal))

  constructor (nat, heads, signal, timeout) {
    this.#nat = nat
    this.#heads = heads
    this.#signal = signal
    signal?.addEventListener('abort', this.#onAbort, { once: true })
    if (timeout != null) {
      this.#timer = setTimeout(() => this.fail(timeoutError(timeout)), timeout)
      this.#timer.unref?.()
    }
  }

  fail (err) {
    if (this.failed) return
    this.failed = err
    if (this.id >= 0) {
      this.#heads.reject(this.id, err)
      this.#nat.cancel(this.id)
    }
  }

  cleanup = () => {
    clearTimeout(this.#timer)
    this.#signal?.removeEventListener('abort', this.#onAbort)
  }
}

/** Starts one native request (one hop) for `req`; returns its id. */
function startRequest (nat, req) {
  const { prepared, headers } = req
  if (prepared.bytes != null && !headers.has('content-length')) {
    headers.set('content-length', String(typeof prepared.bytes === 'string' ? Buffer.byteLength(prepared.bytes) : prepared.bytes.byteLength))
  }
  let id
  try {
    id = nat.start(req.method, req.url.href, flatHeaders(headers), prepared.bytes ?? null, !!prepared.stream)
  } catch (e) {
    throw liftError(e)
  }
  if (prepared.stream) pumpUpload(nat, id, prepared.stream)
  return id
}

/** Points `req` at the redirect's target (hop number `hop`), or throws where fetch would. */
function redirectTo (req, status, location, hop) {
  if (req.redirect === 'error') throw new TypeError(`h3Fetch: redirect to ${location} with redirect: "error"`)
  if (hop >= MAX_REDIRECTS) throw new TypeError('h3Fetch: too many redirects')
  const next = new URL(location, req.url)
  // Like fetch: credentials do not follow a redirect to another origin.
  if (next.origin !== req.url.origin) req.headers.delete('authorization')
  req.url = next
  if (next.protocol !== 'https:') throw new TypeError(`h3Fetch: redirect to a non-https URL ${next.href}`)
  if (status === 303 ? req.method !== 'HEAD' : ((status === 301 || status === 302) && req.method === 'POST')) {
    req.method = 'GET'
    req.prepared = { bytes: null }
    for (const h of BODY_HEADERS) req.headers.delete(h)
  } else if (req.prepared.stream) {
    throw new TypeError('h3Fetch: cannot follow a redirect with a streamed request body')
  }
}

/** The Response for native request `id`, whose head (and maybe whole body) has arrived. */
function responseFor (nat, id, req, head, headers, hop, ctl) {
  const status = head.status
  const noBody = req.method === 'HEAD' || NULL_BODY.has(status)
  const cleanup = ctl ? ctl.cleanup : noop
  if (head.trailers) {
    // The whole (small) body came with the head: no body stream needed.
    cleanup()
    const body = noBody || !head.body.length ? null : head.body
    const flat = head.trailers
    return finishResponse(body, status, headers, req.url, hop, () => Promise.resolve(headersFromFlat(flat)))
  }
  const { stream, trailers } = pulledBody(() => nat.readBody(id), {
    mapError: (err) => ctl?.failed || err,
    onCancel: () => nat.cancel(id),
    onDone: cleanup
  })
  if (noBody) {
    stream.cancel().catch(noop)
    cleanup()
  }
  try {
    return finishResponse(noBody ? null : stream, status, headers, req.url, hop, trailers)
  } catch (e) {
    nat.cancel(id)
    throw e
  }
}

async function clientFetch (nat, heads, input, init = {}) {
  const req = outgoingRequest(input, init)
  if (req.signal?.aborted) throw abortError(req.signal)
  const ctl = req.signal || req.timeout != null ? new FetchControl(nat, heads, req.signal, req.timeout) : null
  let id = -1
  try {
    req.prepared = req.body == null ? NO_BODY : await prepareBody(req.body, req.headers)
    for (let hop = 0; ; hop++) {
      if (ctl?.failed) throw ctl.failed
      id = startRequest(nat, req)
      if (ctl) ctl.id = id
      const head = await heads.wait(id)
      const location = REDIRECTS.has(head.status) && req.redirect !== 'manual' ? flatGet(head.headers, 'location') : null
      if (location !== null) {
        nat.cancel(id)
        redirectTo(req, head.status, location, hop)
        continue
      }
      // The Response builds its Headers from the pairs: one Headers per response, not two.
      return responseFor(nat, id, req, head, headerPairs(head.headers), hop, ctl)
    }
  } catch (e) {
    ctl?.cleanup()
    if (id >= 0) nat.cancel(id)
    throw ctl?.failed || e
  }
}

function finishResponse (body, status, headers, url, hops, trailers) {
  const init = { status: status < 200 ? 200 : status, headers }
  try {
    return fetchResponse(body, init, url.href, hops > 0, trailers)
  } catch (e) {
    throw new TypeError(`h3Fetch: unusable response (status ${status}): ${e.message}`)
  }
}

let sharedClient = null
const tlsClients = new Map()

/** The shared client for `tls` (undefined/null: the default one). */
function clientFor (tls) {
  if (tls == null) return (sharedClient ??= new H3Client())
  const key = JSON.stringify(clientOptions(tls), (k, v) => (v && v.type === 'Buffer') ? Buffer.from(v.data).toString('hex') : v)
  let client = tlsClients.get(key)
  if (!client) {
    client = new H3Client({ tls })
    tlsClients.set(key, client)
  }
  return client
}

/**
 * fetch() over HTTP/3. Without `init.tls` it uses a shared client (connections are reused per
 * origin and never keep the process alive by themselves); with `init.tls` a client per distinct
 * TLS setting.
 */
function h3Fetch (input, init) {
  let client
  try {
    client = clientFor(init?.tls)
  } catch (e) {
    return Promise.reject(e)
  }
  return client.fetch(input, init)
}

function createH3Client (options) {
  return new H3Client(options)
}

module.exports = { H3Client, createH3Client, h3Fetch }
