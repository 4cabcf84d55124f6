// ESM entry: re-exports the CommonJS entry (index.js), so `import` and `require` share one
// module instance and one native addon.
import cjs from './index.js'

export const { createH3Server, H3Server, withTrailers, trailersSymbol, h3Fetch, createH3Client, H3Client, WebTransportError, altSvcHeader } = cjs
export default cjs
