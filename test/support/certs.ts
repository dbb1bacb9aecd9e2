// Test certificates made with the openssl CLI (node:crypto cannot issue X.509): a CA, server certificates for
// given names, client certificates, all in a temp dir removed by `cleanup()`.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Issued { cert: string; key: string; certPem: string }
export interface TestCa {
  dir: string;
  cert: string;
  certPem: string;
  /** A server certificate for `names` (DNS SANs; the first is also the CN), signed by this CA. */
  server(file: string, names: string[], days?: number): Issued;
  /** A client certificate with subject `/CN=<cn>/O=<o>`, signed by this CA. */
  client(file: string, cn: string, o?: string): Issued;
  cleanup(): void;
}

const openssl = (args: string[], cwd: string) => execFileSync('openssl', args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });

/** A fresh CA (EC P-256: fast to generate). */
export function makeCa(name = 'Gatehouse Test CA', dir = mkdtempSync(join(tmpdir(), 'gh-certs-'))): TestCa {
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', `/CN=${name}`,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], dir);
  const issue = (file: string, subj: string, ext: string, days: number): Issued => {
    openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${file}.key`, '-out', `${file}.csr`, '-subj', subj], dir);
    writeFileSync(join(dir, `${file}.ext`), ext);
    openssl(['x509', '-req', '-in', `${file}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${file}.leaf`, '-days', String(days), '-extfile', `${file}.ext`], dir);
    // The chain: leaf, then the CA (what a server sends).
    const pem = readFileSync(join(dir, `${file}.leaf`), 'utf8') + readFileSync(join(dir, 'ca.crt'), 'utf8');
    writeFileSync(join(dir, `${file}.crt`), pem);
    return { cert: join(dir, `${file}.crt`), key: join(dir, `${file}.key`), certPem: pem };
  };
  return {
    dir,
    cert: join(dir, 'ca.crt'),
    certPem: readFileSync(join(dir, 'ca.crt'), 'utf8'),
    server: (file, names, days = 2) => issue(file, `/CN=${names[0]}`, `subjectAltName=${names.map((n) => `DNS:${n}`).join(',')}\nextendedKeyUsage=serverAuth\n`, days),
    client: (file, cn, o = 'Acme') => issue(file, `/CN=${cn}/O=${o}`, 'extendedKeyUsage=clientAuth\n', 2),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}
