// Throwaway certificate authorities and certificates for the TLS specs, made with openssl at
// test time (ECDSA P-256, valid 10 days); nothing here is committed.
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes']

function openssl (args) {
  execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] })
}

/** A CA: `issue(names)` signs a leaf for DNS names / IP addresses (server and client use). */
export function makeCA (cn = 'napi-h3 test CA') {
  const dir = mkdtempSync(path.join(tmpdir(), 'napi-h3-ca-'))
  const caKey = path.join(dir, 'ca.key')
  const caCert = path.join(dir, 'ca.pem')
  openssl(['req', '-x509', ...EC, '-keyout', caKey, '-out', caCert, '-days', '10', '-subj', `/CN=${cn}`,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'])
  let n = 0
  return {
    dir,
    certFile: caCert,
    certPem: readFileSync(caCert, 'utf8'),
    /** A leaf signed by this CA; `names` become subjectAltNames (IPs as IP:, the rest DNS:). */
    issue (names, { cn: leafCn = names[0] } = {}) {
      const base = path.join(dir, `leaf${++n}`)
      const san = names.map((x) => /^[\d.]+$|:/.test(x) ? `IP:${x}` : `DNS:${x}`).join(',')
      writeFileSync(`${base}.ext`, `subjectAltName=${san}\nbasicConstraints=critical,CA:FALSE\n` +
        'keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth,clientAuth\n')
      openssl(['req', '-new', ...EC, '-keyout', `${base}.key`, '-out', `${base}.csr`, '-subj', `/CN=${leafCn}`])
      openssl(['x509', '-req', '-in', `${base}.csr`, '-CA', caCert, '-CAkey', caKey, '-CAcreateserial',
        '-out', `${base}.pem`, '-days', '10', '-extfile', `${base}.ext`])
      return {
        certFile: `${base}.pem`,
        keyFile: `${base}.key`,
        cert: readFileSync(`${base}.pem`, 'utf8'),
        key: readFileSync(`${base}.key`, 'utf8')
      }
    }
  }
}
