// What the db, proxy and cache images are built from, as one digest, carried by each image as the
// label org.mymdb.inputs. Two builds from the same sources and base image carry the same digest,
// whichever machine made them and whatever its build cache held (their image digests differ: apt
// and the files' times make every fresh build a new image). The deploy keeps a running db, proxy
// or cache whose image carries the digest of the new one (remote/pin.ts): PostgreSQL is restarted
// only when what it is built from changed.
import { createHash } from 'node:crypto'
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join, relative, sep } from 'node:path'
import type { Runner } from './sh.ts'

/** The label with the digest of an image's build inputs. */
export const INPUTS_LABEL = 'org.mymdb.inputs'

/** A digest as the label holds it (anything else: an image built before the label existed). */
export const INPUTS_DIGEST = /^sha256:[0-9a-f]{64}$/

export interface InputFile {
  /** The path inside the build context, with forward slashes. */
  path: string
  executable: boolean
  content: Buffer
}

/**
 * The digest of a build's inputs (pure): the base image (its name and identity), the Dockerfile's
 * path, and every file of the context with its path, its executable bit and its content.
 */
export function inputsDigest(base: string, dockerfile: string, files: readonly InputFile[]): string {
  const h = createHash('sha256')
  h.update(`mymdb-inputs 1\nbase ${base}\ndockerfile ${dockerfile}\n`)
  for (const f of [...files].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0)))
    h.update(`file ${JSON.stringify(f.path)} ${f.executable ? 'x' : '-'} ${createHash('sha256').update(f.content).digest('hex')}\n`)
  return `sha256:${h.digest('hex')}`
}

/** The files of a build context (a directory without a .dockerignore: every file goes in). */
export function contextFiles(dir: string): InputFile[] {
  const out: InputFile[] = []
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name)
      if (e.isDirectory()) walk(p)
      else if (e.isFile()) {
        if (e.name === '.dockerignore') throw new Error(`${p}: the inputs digest reads every file of the context; it does not know .dockerignore`)
        out.push({ path: relative(dir, p).split(sep).join('/'), executable: (statSync(p).mode & 0o111) !== 0, content: readFileSync(p) })
      }
    }
  }
  walk(dir)
  return out
}

/**
 * The base image as the digest names it: its registry digest when it has one (the same on every
 * machine that pulled it), else its image id (a bootstrapped base: that machine's own); the name
 * alone when the engine does not know it.
 */
export async function baseIdentity(run: Runner, image: string): Promise<string> {
  const r = await run(['docker', 'image', 'inspect', '--format', '{{range .RepoDigests}}{{println .}}{{end}}{{.Id}}', image])
  const lines = r.ok ? r.stdout.split('\n').map((l) => l.trim()).filter(Boolean) : []
  const id = lines.find((l) => l.includes('@sha256:')) ?? lines.at(-1)
  return id ? `${image} ${id}` : image
}
