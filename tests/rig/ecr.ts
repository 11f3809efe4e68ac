// Amazon ECR's registry, for the rig. moto creates ECR repositories and hands out login tokens, but
// the registry host of the account, <account>.dkr.ecr.<region>.amazonaws.com, does not exist. The
// rig gives that name to the rig registry: /etc/hosts maps it to 127.0.0.1 on this machine (Docker
// falls back to plain HTTP for registries on loopback addresses, port 80 when none is named) and a
// forwarder on 127.0.0.1:80 reaches the registry. The SSH host maps it for its own engine
// (startSshHost's registryAliases: HTTPS on its 127.0.0.1:443, since MyMDB has its port 80). Push,
// login and pull then go to a real registry under ECR's name, which admits only the token moto
// hands out (the rig registry's port 5001: basic auth, user AWS).
import { readFileSync, writeFileSync } from 'node:fs'
import { startFaultProxy } from './faultproxy.ts'

const HOSTS = '/etc/hosts'
const MARK = '# mymdb-rig-ecr'

/** Why the mapping cannot be made here ('' when it can): it writes /etc/hosts and listens on port 80. */
export function ecrMappingUnavailable(): string {
  return process.getuid?.() === 0 ? '' : 'needs root: it maps the ECR host name in /etc/hosts and listens on 127.0.0.1:80'
}

function withoutMapping(text: string): string {
  return text
    .split('\n')
    .filter((line) => !line.endsWith(MARK))
    .join('\n')
}

export interface EcrMapping {
  host: string
  close(): Promise<void>
}

/** Maps `host` (an ECR registry name) to the rig registry's ECR port, listening on 127.0.0.1:`registryPort`. */
export async function mapEcrHost(host: string, registryPort: number): Promise<EcrMapping> {
  const forwarder = await startFaultProxy(registryPort, '127.0.0.1', 80)
  const before = withoutMapping(readFileSync(HOSTS, 'utf8')) // also drops what a crashed run left
  writeFileSync(HOSTS, `${before.replace(/\n*$/, '\n')}127.0.0.1 ${host} ${MARK}\n`)
  return {
    host,
    async close() {
      writeFileSync(HOSTS, withoutMapping(readFileSync(HOSTS, 'utf8')))
      await forwarder.close()
    },
  }
}
