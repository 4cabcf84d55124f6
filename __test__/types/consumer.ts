// Type-checks the public API as a CommonJS TypeScript consumer sees it (`require` entry).
// Compiled by __test__/types.spec.mjs with `tsc -p __test__/types`; never run.
import {
  createH3Server, H3Server, withTrailers, trailersSymbol, h3Fetch, createH3Client, H3Client, WebTransportError,
  altSvcHeader
} from 'napi-h3'
import type {
  H3Request, H3StreamingRequest, Handler, RouteDefinition, RouteMap, ServeOptions, StopOptions, ServerStats,
  WebTransportSession, WebTransportBidirectionalStream, WebTransportCloseInfo, H3Response, H3ClientOptions,
  H3FetchInit, H3Error, H3ErrorCode, SocketAddress, ResponseTrailers, ReloadOptions,
  TLSOptions, TLSCertificates, ConnectionInfo, PeerCertificate, AltSvcOptions, WebTransportDraft, EarlyDataStats
} from 'napi-h3'

async function server (): Promise<void> {
  const echo: Handler = async (req, srv) => {
    const id: string | undefined = req.params.id
    const ip: SocketAddress | null = srv.requestIP(req)
    const body = await req.text()
    req.signal.addEventListener('abort', () => {})
    return Response.json({ id, ip: ip?.address, family: ip?.family, body, method: req.method, url: req.url })
  }

  const routes: RouteDefinition[] = [
    { method: 'GET', pattern: '/users/:id', fetch: echo },
    { pattern: '/static', response: new Response('static', { headers: { 'content-type': 'text/plain' } }) },
    {
      method: 'POST',
      pattern: '/upload',
      mode: 'streaming',
      async fetch (req) {
        const r = req as H3StreamingRequest
        let n = 0
        for await (const chunk of r.body!) n += chunk.byteLength
        const trailers: Headers = await r.trailers
        return new Response(String(n), { headers: { 'x-trailer': trailers.get('x-sum') ?? '' } })
      }
    },
    { method: 'PROPFIND', pattern: '/dav/*', fetch: (req) => new Response(req.params['*']) },
    {
      pattern: '/dgram',
      h3Datagram (payload, ctx) {
        const id: bigint = ctx.streamId
        const flow: bigint = ctx.flowId
        const max: number | null = ctx.maxDatagramSize
        ctx.sendReply(payload)
        ctx.sendReply(`${id} ${flow} ${max} ${ctx.request.url}`)
      }
    },
    {
      pattern: '/wt',
      async webtransport (session, srv) {
        const sid: bigint = session.sessionId
        const req: H3Request = session.request
        if (req.headers.get('authorization') === null) return session.reject(401)
        const offered: string[] | undefined = session.availableProtocols
        if (offered?.includes('chat-v1')) session.accept({ protocol: 'chat-v1' })
        session.accept()
        const picked: string = session.protocol
        void picked
        const draft: WebTransportDraft = session.draft
        if (draft === 'draft15' || draft === 'draft13' || draft === 'draft02') void draft
        await session.ready
        session.sendDatagram(new Uint8Array([1, 2, 3]))
        const max: number | null = session.datagrams.maxDatagramSize
        const w = session.datagrams.writable.getWriter()
        await w.write('hi')
        w.releaseLock()
        for await (const d of session.datagrams.readable) { const u: Uint8Array = d; void u; break }
        for await (const bidi of session.incomingBidirectionalStreams) {
          const s: WebTransportBidirectionalStream = bidi
          await s.readable.pipeTo(s.writable)
        }
        for await (const uni of session.incomingUnidirectionalStreams) await uni.cancel(new WebTransportError('no', { streamErrorCode: 7 }))
        const out = await session.createUnidirectionalStream()
        await out.getWriter().write(new Uint8Array(4))
        const bidi = await session.createBidirectionalStream()
        await bidi.writable.abort(new WebTransportError('bye', { source: 'stream', streamErrorCode: null }))
        session.draining.then(() => session.close({ closeCode: 1, reason: 'draining' }))
        const info: WebTransportCloseInfo = await session.closed
        console.log(sid, max, info.closeCode, info.reason, srv.port)
      }
    }
  ]

  const map: RouteMap = {
    '/': new Response('home'),
    '/api/:name': { GET: (req) => new Response(req.params.name), post: echo, '*': new Response(null, { status: 405 }) },
    '/any': echo
  }

  const options: ServeOptions = {
    port: 0,
    hostname: '127.0.0.1',
    tls: 'self-signed',
    routes,
    fetch: () => new Response('not found', { status: 404 }),
    error: (err) => new Response(String(err), { status: 500 }),
    maxRequestBodySize: 1 << 20,
    idleTimeout: 30,
    maxConnections: 100,
    maxConcurrentStreams: 100,
    maxHeaderListSize: 16384,
    reusePort: false,
    qlogDir: '/tmp/qlog',
    allow0RTT: true,
    quicDatagram (payload, ctx) {
      const hex: string = ctx.connectionIdHex
      const id: Uint8Array = ctx.connectionId
      ctx.sendReply(payload)
      void hex; void id
    }
  }
  const s: H3Server = createH3Server(options)
  const s2 = new H3Server({ routes: map, tls: { cert: '/path/cert.pem', key: Buffer.from('key') } })
  const port: number = s.port
  const url: URL = s.url
  const hash: Uint8Array = s.certificateHash
  const pem: string | undefined = s.certificatePem
  const pending: number = s.pendingRequests
  const host: string = s.hostname
  console.log(port, url.href, hash.byteLength, pem, pending, host)

  const reload: ReloadOptions = { routes: map, fetch: undefined, error: undefined }
  s.reload(reload)
  s.reload({ routes })

  // TLS: certificates by SNI, reload, mutual TLS, Alt-Svc, per-connection figures.
  const bySni: TLSCertificates = [
    { cert: 'a.pem', key: 'a.key', serverName: 'a.example.com' },
    { cert: 'wild.pem', key: 'wild.key', serverName: '*.example.com' },
    { cert: new Uint8Array(0), key: new ArrayBuffer(0), ca: ['ca.pem'], requestCert: true, rejectUnauthorized: false }
  ]
  const one: TLSOptions = { cert: 'c.pem', key: 'k.pem' }
  const s3 = createH3Server({ tls: bySni, fetch: (req, server) => {
    const peer: PeerCertificate | null = server.peerCertificate(req)
    if (server.isEarlyData(req) && req.method !== 'GET') return new Response('Too Early', { status: 425 })
    return new Response(peer ? `${peer.subject} ${peer.issuer} ${peer.fingerprint256} ${peer.raw.length} ${peer.chain.length} ${peer.pem} ${peer.validTo}` : 'anonymous')
  } })
  s3.reload({ tls: one })
  s3.reload({ tls: bySni, routes })
  const alt: string = s3.altSvc
  const altOpts: AltSvcOptions = { maxAge: 3600 }
  const alt2: string = altSvcHeader(s3, altOpts) + altSvcHeader(443)
  for (const c of s3.connections()) {
    const info: ConnectionInfo = c
    const figures: number[] = [info.id, info.rttMs, info.minRttMs, info.congestionWindow, info.mtu, info.congestionEvents,
      info.packetsSent, info.packetsLost, info.bytesLost, info.bytesSent, info.bytesReceived, info.datagramsSent, info.datagramsReceived]
    const sni: string | undefined = info.serverName
    const addr: SocketAddress = info.remote
    const mtls: boolean = info.clientCertificate
    console.log(figures, sni, addr, mtls)
  }
  console.log(alt, alt2)
  s.unref()
  s.ref()

  const stats: ServerStats = s.getStats()
  const counters: number[] = [
    stats.connectionsTotal, stats.connectionsActive, stats.requestsTotal, stats.requestsActive, stats.uptimeMs,
    stats.bytesReceived, stats.bytesSent, stats.datagramsReceived, stats.datagramsSent, stats.datagramsDropped,
    stats.webtransportSessionsActive, stats.webtransportStreamsActive, stats.requestsRejected, stats.connectionErrors,
    stats.earlyRequests
  ]
  console.log(counters)

  const stop: StopOptions = { timeout: 10 }
  await s.stop(stop)
  await s.stop({ force: true })
  await s.stop(true)
  const done: Promise<void> = s2.stop()
  await done
}

function trailers (): Response[] {
  const plain: Response = withTrailers(new Response('body'), { 'x-checksum': 'abc' })
  const fn = withTrailers(new Response('body'), async () => new Headers({ 'x-done': '1' }))
  const promised = withTrailers(new Response('body'), Promise.resolve([['x-a', 'b']] as [string, string][]))
  const none = withTrailers(new Response('body'), null)
  const t: ResponseTrailers = () => ({ 'x-sync': '1' })
  const r = new Response('x') as Response & { [trailersSymbol]?: ResponseTrailers }
  r[trailersSymbol] = t
  return [plain, fn, promised, none, r]
}

async function client (): Promise<void> {
  const res: H3Response = await h3Fetch('https://localhost:4433/', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ a: 1 }),
    timeout: 5000,
    redirect: 'manual',
    signal: AbortSignal.timeout(1000),
    tls: { ca: '-----BEGIN CERTIFICATE-----', rejectUnauthorized: true }
  })
  const status: number = res.status
  const text: string = await res.text()
  const tr: Headers = await res.trailers
  console.log(status, text, tr.get('x-checksum'))

  async function * gen (): AsyncGenerator<Uint8Array> { yield new Uint8Array(1) }
  const init: H3FetchInit = { method: 'PUT', body: gen(), duplex: 'half', tls: { serverCertificateHashes: [new Uint8Array(32), { algorithm: 'sha-256', value: new Uint8Array(32) }] } }
  await h3Fetch(new URL('https://localhost:4433/upload'), init)

  const opts: H3ClientOptions = { tls: { rejectUnauthorized: false }, idleTimeout: 10, connectTimeout: 5, allow0RTT: true }
  const mtls: H3ClientOptions = { tls: { ca: 'ca.pem', serverName: 'api.example.com', cert: 'client.pem', key: Buffer.from('key') } }
  void mtls
  const c: H3Client = createH3Client(opts)
  const c2 = new H3Client()
  const f = c.fetch
  const r2 = await f('https://localhost:4433/', { body: new Uint8Array([1]), method: 'POST' })
  const body: ReadableStream<Uint8Array> | null = r2.body
  const early: EarlyDataStats = c.earlyData
  console.log(body, r2.redirected, r2.url, c.connectionCount, c.connectionsOpened, early.attempted, early.accepted, early.rejected)

  const wt: WebTransportSession = await c.webtransport('https://localhost:4433/wt', {
    headers: { authorization: 'Bearer x' },
    protocols: ['chat-v2', 'chat-v1'],
    serverCertificateHashes: [{ algorithm: 'sha-256', value: new Uint8Array(32) }]
  })
  await wt.ready
  const negotiated: string = wt.protocol
  void negotiated
  const bidi = await wt.createBidirectionalStream()
  const writer = bidi.writable.getWriter()
  await writer.write('ping')
  await writer.close()
  const reader = bidi.readable.getReader()
  const { value, done } = await reader.read()
  const chunk: Uint8Array | undefined = value
  console.log(chunk, done)
  wt.close({ closeCode: 0, reason: 'done' })
  wt.close()
  await wt.closed.catch((err: unknown) => {
    if (err instanceof WebTransportError) {
      const source: 'stream' | 'session' = err.source
      const code: number | null = err.streamErrorCode
      const h3code: H3ErrorCode | undefined = err.code
      const httpStatus: number | undefined = err.status
      const name: 'WebTransportError' = err.name
      console.log(source, code, h3code, httpStatus, name, err.message)
    }
  })

  try {
    await c2.fetch('https://localhost:4433/')
  } catch (e) {
    const err = e as H3Error
    if (err.code === 'ERR_H3_TIMEOUT' || err.code === 'ERR_H3_CONNECT') console.log(err.message)
  }
  await c.close()
  await c2.close()
}

// Wrong usage is rejected.
function rejected (s: H3Server, c: H3Client): void {
  // @ts-expect-error: port must be a number
  createH3Server({ port: '4433' })
  // @ts-expect-error: mode is 'buffered' | 'streaming'
  createH3Server({ routes: [{ pattern: '/', mode: 'stream', fetch: () => new Response() }] })
  // @ts-expect-error: a route definition needs a pattern
  createH3Server({ routes: [{ method: 'GET', fetch: () => new Response() }] })
  // @ts-expect-error: a handler must return a Response
  createH3Server({ fetch: () => 'hello' })
  // @ts-expect-error: stop's timeout is in seconds, a number
  void s.stop({ timeout: '10s' })
  // @ts-expect-error: no such counter
  void s.getStats().requestsFailed
  // @ts-expect-error: withTrailers wants a Response
  withTrailers('body', {})
  // @ts-expect-error: the client has no `get`
  void c.get('https://localhost/')
  // @ts-expect-error: source is 'stream' | 'session'
  void new WebTransportError('x', { source: 'connection' })
  // @ts-expect-error: not an H3ErrorCode
  const code: H3ErrorCode = 'ERR_H3_NOPE'
  void code
}

export { server, trailers, client, rejected }
