// Which image the host runs for db, proxy and cache after the pull: pinned by the digest the
// registry gave it (Swarm compares references as written: the same image under a new tag would
// restart PostgreSQL), and the running one kept when the new one is built from the same inputs
// (the label org.mymdb.inputs, imageinputs.ts): a build on another machine, or after the build
// cache was emptied, is a new image of the same sources, and must not restart the database.
import { INPUTS_DIGEST, INPUTS_LABEL } from '../imageinputs.ts'
import { runIn, type Stack } from '../stack.ts'
import { splitImageRef, STACK_NAME } from '../stackfile.ts'
import { PINNED_IMAGES, type ImageName, type PinnedImage } from '../vars.ts'

/**
 * The db, proxy and cache images by the digest the registry gave them (read from the pulled images), when
 * the deploy named them by tag (this step run alone: push passes the digests otherwise).
 */
export async function pinToDigests(stack: Stack, images: Record<ImageName, string>): Promise<Record<ImageName, string>> {
  const tagged = PINNED_IMAGES.filter((n) => !images[n].includes('@'))
  if (tagged.length === 0) return images
  const r = await runIn(stack, ['sh', '-c', 'for r in "$@"; do docker image inspect --format "{{range .RepoDigests}}{{println .}}{{end}}" "$r" 2>/dev/null; done', 'sh', ...tagged.map((n) => images[n])])
  const digests = r.stdout.split('\n').map((l) => l.trim())
  const out = { ...images }
  for (const n of tagged) {
    const pinned = digests.find((d) => d.startsWith(`${splitImageRef(images[n]).repository}@sha256:`))
    if (pinned) out[n] = pinned
  }
  return out
}

/** A service's image now and the inputs digest of it and of the image the deploy pulled. */
export interface InputsFacts {
  /** The image in the running service's spec ('' when there is no such service). */
  running: string
  runningInputs: string
  newInputs: string
}

/**
 * The images to run (pure): each of db, proxy and cache whose new image carries the same inputs
 * digest as the running one, from the same repository, stays the running image. Returns them and
 * the names kept.
 */
export function keepUnchanged(images: Record<ImageName, string>, facts: Partial<Record<PinnedImage, InputsFacts>>): { images: Record<ImageName, string>; kept: PinnedImage[] } {
  const out = { ...images }
  const kept: PinnedImage[] = []
  for (const n of PINNED_IMAGES) {
    const f = facts[n]
    if (!f?.running || f.running === images[n] || !INPUTS_DIGEST.test(f.newInputs) || f.runningInputs !== f.newInputs) continue
    if (splitImageRef(f.running).repository !== splitImageRef(images[n]).repository) continue
    out[n] = f.running
    kept.push(n)
  }
  return { images: out, kept }
}

const SERVICE_IMAGE = '{{.Spec.TaskTemplate.ContainerSpec.Image}}'
const LABEL = `{{index .Config.Labels "${INPUTS_LABEL}"}}`
// per service: its name, the running image, its inputs label, the new image's inputs label
const FACTS_SCRIPT = [
  'svc=$1 lbl=$2; shift 2',
  'label() { [ -n "$1" ] && docker image inspect --format "$lbl" "$1" 2>/dev/null; }',
  'while [ $# -gt 1 ]; do',
  '  cur=$(docker service inspect --format "$svc" "$STACK_$1" 2>/dev/null) || cur=',
  '  printf "%s\\t%s\\t%s\\t%s\\n" "$1" "$cur" "$(label "$cur")" "$(label "$2")"',
  '  shift 2',
  'done',
].join('\n')

/** What keepUnchanged needs to know, read on the host (after the pull) in one command. */
export async function inputsFacts(stack: Stack, images: Record<ImageName, string>): Promise<Partial<Record<PinnedImage, InputsFacts>>> {
  const script = FACTS_SCRIPT.replace('$STACK_', `${STACK_NAME}_`)
  const r = await runIn(stack, ['sh', '-c', script, 'sh', SERVICE_IMAGE, LABEL, ...PINNED_IMAGES.flatMap((n) => [n, images[n]])])
  const out: Partial<Record<PinnedImage, InputsFacts>> = {}
  for (const line of r.stdout.split('\n')) {
    const [name, running = '', runningInputs = '', newInputs = ''] = line.split('\t')
    if ((PINNED_IMAGES as readonly string[]).includes(name ?? '')) out[name as PinnedImage] = { running: running.trim(), runningInputs: runningInputs.trim(), newInputs: newInputs.trim() }
  }
  return out
}
