// Names, with an explicit annotation, each exported type that consumer.ts and consumer-esm.mts
// leave implicit, so that every export of index.d.ts is checked (types.spec.mjs asserts that each
// exported name appears in one of the files here). Compiled only, never run.
import { createH3Server, h3Fetch } from 'napi-h3'
import type {
  ClientTlsOptions, H3BodyInit, H3DatagramContext, H3RequestInit, Method, MethodKey, PemInput,
  QUICDatagramContext, TLSOptions, TrailersValue
} from 'napi-h3'

const pem: PemInput = new Uint8Array([45, 45])
const tls: TLSOptions = { cert: pem, key: '-----BEGIN PRIVATE KEY-----' }
const method: Method = 'PATCH'
const keys: MethodKey[] = [method, 'get', '*']
const trailers: TrailersValue = [['x-sum', '1']]
const noTrailers: TrailersValue = null

async function * chunks (): AsyncGenerator<Uint8Array | string> { yield 'a'; yield new Uint8Array([1]) }
const bodies: H3BodyInit[] = ['text', new Uint8Array(1), new Blob(['b']), chunks()]

export async function everyType (): Promise<void> {
  const server = createH3Server({
    tls,
    port: 0,
    quicDatagram (payload: Uint8Array, ctx: QUICDatagramContext) {
      const hex: string = ctx.connectionIdHex
      ctx.sendReply(`${hex} ${ctx.maxDatagramSize ?? 0} ${payload.byteLength}`)
    },
    routes: [{
      pattern: '/dgram',
      h3Datagram (payload: Uint8Array, ctx: H3DatagramContext) {
        const flow: bigint = ctx.flowId
        ctx.sendReply(`${flow}:${payload.byteLength}:${ctx.request.method}`)
      }
    }]
  })
  const clientTls: ClientTlsOptions = { serverCertificateHashes: [server.certificateHash], rejectUnauthorized: true }
  for (const body of bodies) {
    const init: H3RequestInit = { method: keys[0] === 'PATCH' ? 'PATCH' : 'POST', body, duplex: 'half', timeout: 1000 }
    await (await h3Fetch(server.url, { ...init, tls: clientTls })).arrayBuffer()
  }
  console.log(trailers, noTrailers)
  await server.stop()
}
