// The stack's secrets as Swarm secrets (pure: the commands; stack.ts runs them): each secret value a service's environment holds moves into a Swarm secret, mounted at
// /run/secrets/<name> and named to the service as <NAME>_FILE (Docker's convention, which Django's
// settings and the db image's entrypoint follow), so neither `docker service inspect` nor
// `docker inspect` shows it. Secrets cannot change: the name carries a digest of the value, a new
// value is a new secret, and the deploy removes the stack's secrets no service uses any more once
// the new version runs (Swarm's automatic rollback needs the old ones until then).
import { createHash } from 'node:crypto'
import { shellQuote, type Cmd } from './sh.ts'
import { DB_CA_FILE, DB_CA_TARGET, isObj, STACK_NAME, type JsonObject } from './stackfile.ts'

/** The environment variables that hold secrets (the upload keys' secret half: AWS_SECRET_ACCESS_KEY). */
export const SECRET_VARS = ['DJANGO_SECRET_KEY', 'DJANGO_SECRET_KEY_FALLBACKS', 'DJANGO_DB_PASSWORD', 'POSTGRES_PASSWORD', 'AWS_SECRET_ACCESS_KEY'] as const

/** The .env key a secret variable's value comes from (docker-compose.yml's mapping), where it is not the same name. */
export const SECRET_ENV_KEYS: Readonly<Partial<Record<(typeof SECRET_VARS)[number], string>>> = { AWS_SECRET_ACCESS_KEY: 'MYMDB_UPLOAD_AWS_SECRET_ACCESS_KEY' }

/** The label the deploy puts on the secrets it makes (the prune removes only those). */
export const SECRET_LABEL = `${STACK_NAME}.secret`

/** Where a service finds a secret (the file's name under /run/secrets). */
export const secretTarget = (name: string) => name.toLowerCase()

/** A secret's name in the Swarm: the stack, the variable, 12 hex digits of the value's SHA-256. */
export function secretName(variable: string, value: string): string {
  return `${STACK_NAME}_${variable.toLowerCase()}_${createHash('sha256').update(value).digest('hex').slice(0, 12)}`
}


/**
 * The stack file with its secret values moved into Swarm secrets (pure), and the secrets it names
 * (name -> value), which must exist before `docker stack deploy`. An empty value stays as it is.
 */
export function withSwarmSecrets(stack: JsonObject): { stack: JsonObject; secrets: Record<string, string> } {
  const secrets: Record<string, string> = {}
  const services: JsonObject = {}
  for (const [service, raw] of Object.entries(isObj(stack.services) ? stack.services : {})) {
    if (!isObj(raw)) continue
    const env: JsonObject = { ...(isObj(raw.environment) ? raw.environment : {}) }
    const refs: JsonObject[] = []
    for (const variable of SECRET_VARS) {
      const rendered = env[variable]
      if (typeof rendered !== 'string' || rendered === '') continue
      // docker compose config writes a $ as $$ (stack deploy reads it back as one $): a secret
      // is a file nothing interpolates, so it gets the value itself
      const value = rendered.replace(/\$\$/g, '$')
      const name = secretName(variable, value)
      secrets[name] = value
      delete env[variable]
      env[`${variable}_FILE`] = `/run/secrets/${secretTarget(variable)}`
      refs.push({ source: name, target: secretTarget(variable) })
    }
    services[service] = refs.length > 0 ? { ...raw, environment: env, secrets: refs } : raw
  }
  const declared: JsonObject = {}
  for (const name of Object.keys(secrets).sort()) declared[name] = { external: true }
  return { stack: { ...stack, services, ...(Object.keys(declared).length > 0 ? { secrets: declared } : {}) }, secrets }
}

/** Makes each secret named that does not exist yet, its value the next line of stdin (secretsInput), labelled for the prune. */
export function createSecretsCmd(secrets: Readonly<Record<string, string>>): Cmd {
  const script = `for name in "$@"; do IFS= read -r value; docker secret inspect "$name" >/dev/null 2>&1 || printf %s "$value" | docker secret create --label ${SECRET_LABEL}=1 "$name" - >/dev/null; done`
  return ['sh', '-c', script, 'sh', ...Object.keys(secrets)]
}

/** The values for createSecretsCmd's stdin, a line each, in the order of the names. */
export function secretsInput(secrets: Readonly<Record<string, string>>): string {
  return Object.values(secrets).map((v) => `${v}\n`).join('')
}

/**
 * Removes the secrets the deploy made (labelled) other than `keep`, the current version's: run once
 * the stack converged (Swarm's automatic rollback needs the old ones until then). Prints each name
 * removed; one still in use (a service outside this deploy) stays, said on stderr.
 */
export function pruneSecretsCmd(keep: readonly string[]): Cmd {
  const script = [
    `docker secret ls --filter label=${SECRET_LABEL}=1 --format '{{.Name}}' | while IFS= read -r name; do`,
    '  case " $* " in *" $name "*) continue ;; esac',
    '  if docker secret rm "$name" >/dev/null 2>&1; then echo "$name"; else echo "kept $name: still in use" >&2; fi',
    'done',
  ].join('\n')
  return ['sh', '-c', script, 'sh', ...keep]
}

/**
 * Removes the Swarm configs named `prefix`<anything> other than `keep` (the stack's CA bundles of
 * earlier deploys: a config cannot change, a new bundle is a new one), once the stack converged.
 * Prints each name removed; one still in use stays, said on stderr.
 */
export function pruneConfigsCmd(prefix: string, keep: readonly string[]): Cmd {
  const script = [
    `docker config ls --filter name="$0" --format '{{.Name}}' | while IFS= read -r name; do`,
    '  case "$name" in "$0"*) ;; *) continue ;; esac',
    '  case " $* " in *" $name "*) continue ;; esac',
    '  if docker config rm "$name" >/dev/null 2>&1; then echo "$name"; else echo "kept $name: still in use" >&2; fi',
    'done',
  ].join('\n')
  return ['sh', '-c', script, prefix, ...keep]
}

/**
 * The shell script of a one-off container of the host's stack (`python3 "$@"` in the web image),
 * run in the stack's directory: web's environment, its secrets read into it and handed to docker
 * through a pipe (no file anywhere), and both networks: the database on the internal one, the
 * internet (S3) through the other. `pass`: more `-e NAME` options. A secret comes from a running
 * container of the stack (the values the running version uses, also while a deploy changes
 * them), else from the host's .env (web stopped: a backup must still work).
 */
export function oneOffScript(webService: string, image: string, pass: readonly string[], tty = false): string {
  return [
    'set -eu',
    `image=${shellQuote(image)}`,
    'c=',
    'hold=',
    `trap 'docker rm --force $c $hold >/dev/null 2>&1 || true' EXIT`,
    `spec=$(docker service inspect --format '{{range .Spec.TaskTemplate.ContainerSpec.Env}}{{println .}}{{end}}' ${webService})`,
    `[ -n "$image" ] || image=$(docker service inspect --format '{{.Spec.TaskTemplate.ContainerSpec.Image}}' ${webService})`,
    `running=$(docker ps --quiet --filter label=com.docker.stack.namespace=${STACK_NAME} --filter status=running)`,
    `envkey() { case "$1" in ${Object.entries(SECRET_ENV_KEYS).map(([v, k]) => `${v}) echo ${k} ;;`).join(' ')} *) echo "$1" ;; esac; }`,
    'env=',
    'nl="',
    '"',
    'while IFS= read -r line; do',
    '  case "$line" in',
    '    *_FILE=/run/secrets/*)',
    '      value=',
    '      for r in $running; do value=$(docker exec "$r" cat "${line#*=}" 2>/dev/null </dev/null) && break; value=; done',
    `      [ -n "$value" ] || value=$(sed -n "s/^$(envkey "\${line%%_FILE=*}")='\\\\(.*\\\\)'\\$/\\\\1/p" .env 2>/dev/null)`,
    '      [ -z "$value" ] || env="$env${line%%_FILE=*}=$value$nl" ;;',
    '    ?*) env="$env$line$nl" ;;',
    '  esac',
    'done <<EOF',
    '$spec',
    'EOF',
    // the database on RDS: the CA bundle of its certificate, where web's tasks have it (a Swarm config)
    `ca=; [ ! -f ${DB_CA_FILE} ] || ca="--volume $PWD/${DB_CA_FILE}:${DB_CA_TARGET}:ro"`,
    `c=$(docker create ${['--interactive', ...(tty ? ['--tty'] : []), '--network', `${STACK_NAME}_front`, '--env-file', '/dev/fd/3', '$ca', ...pass, '--entrypoint', 'python3'].join(' ')} "$image" "$@" 3<<EOF`,
    '$env',
    'EOF',
    ')',
    `docker network connect ${STACK_NAME}_back "$c"`,
    // With no container of this node on the front network (the stack stopped, or not started yet),
    // the node has no local instance of it, and dockerd (26) starts a container on two such networks
    // only when it happens to attach the front one first: otherwise 'could not find a network
    // matching network mode'. A container that holds the network while this one starts avoids it.
    `[ -n "$(docker ps --quiet --filter network=${STACK_NAME}_front)" ] || hold=$(docker run --detach --rm --network ${STACK_NAME}_front --entrypoint sleep "$image" 120)`,
    'docker start --attach --interactive "$c"',
  ].join('\n')
}
