// Headless Chromium as an independent WebTransport client (Chromium's own QUIC + WebTransport
// stack), driven over the DevTools protocol by ./browser.mjs; the cases are ./browser-wt-cases.mjs,
// shared with Firefox. The point: `new WebTransport(url, { serverCertificateHashes })` with the hash
// from `server.certificateHash` is the only trust there is — no certificate-ignoring flag and no
// forced QUIC for the WebTransport sessions. Only the last group, which also fetches over HTTP/3 from
// the same page, needs Chromium's flags for that fetch. Skipped when Chromium is not installed
// (.ci/run installs Debian's `chromium`).
import { chromiumPath, haveChromium, launchChromium, spkiHash } from './browser.mjs'
import { webTransportSuites } from './browser-wt-cases.mjs'

const skip = haveChromium ? false : `Chromium not installed at ${chromiumPath} (apt-get install chromium, or set H3_CHROMIUM)`
if (skip) console.log(`# SKIPPED: ${skip}`)

webTransportSuites({
  name: 'Chromium',
  skip,
  launch: () => launchChromium(),
  // Straight to QUIC for the server's origin, and its certificate trusted by its public key.
  launchForFetch: (server) => launchChromium({ quicOrigins: [`127.0.0.1:${server.port}`], spkiHashes: [spkiHash(server.certificatePem)] })
})
