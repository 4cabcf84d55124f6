// Headless Firefox (Debian's firefox-esr) as an independent WebTransport client (Firefox's own QUIC
// stack, neqo, and its WebTransport), driven over WebDriver BiDi by ./firefox.mjs; the cases are
// ./browser-wt-cases.mjs, shared with Chromium. WebTransport sessions need nothing but
// serverCertificateHashes; the last group, which also fetches over HTTP/3, gets the profile a user
// would have after accepting our certificate plus the pref that maps 127.0.0.1 to h3 on the server's
// port (./firefox.mjs h3FetchProfile). Skipped, loudly, when Firefox is not installed (.ci/run
// installs Debian's `firefox-esr`).
import { firefoxPath, haveFirefox, launchFirefox, h3FetchProfile } from './firefox.mjs'
import { webTransportSuites } from './browser-wt-cases.mjs'

const skip = haveFirefox ? false : `Firefox not installed at ${firefoxPath} (apt-get install firefox-esr, or set H3_FIREFOX)`
if (skip) console.log(`# SKIPPED: ${skip}`)

webTransportSuites({
  name: 'Firefox',
  skip,
  launch: () => launchFirefox(),
  launchForFetch: (server) => launchFirefox(h3FetchProfile(server)),
  // Firefox 153 keeps a session (and its connection) open after its tab closes or navigates away:
  // no CLOSE capsule, no reset, keep-alives go on (seen here, 10 s and more).
  closesOnTeardown: false,
  // Firefox takes 7 s to start on an idle 2-core machine and 25-40 s on a loaded one.
  slowStart: 60000
})
