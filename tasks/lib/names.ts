// What a stage's AWS resources are called and how they are tagged: every step finds what exists
// by these names and tags, so a re-run or a run after an interruption makes no twins.

/** The Project tag of everything the deploy creates. */
export const PROJECT_TAG = 'mymdb'

/** The tags every resource of a stage carries; steps find existing resources by them. */
export function stageTags(stage: string): { Key: string; Value: string }[] {
  return [
    { Key: 'Project', Value: PROJECT_TAG },
    { Key: 'Stage', Value: stage },
  ]
}

/** EC2 Describe* filters that match the stage's tags. */
export function stageTagFilters(stage: string): { Name: string; Values: string[] }[] {
  return stageTags(stage).map((t) => ({ Name: `tag:${t.Key}`, Values: [t.Value] }))
}

/** Base name of a stage's resources: `mymdb-<stage>`. */
export function stageName(stage: string): string {
  return `${PROJECT_TAG}-${stage}`
}

/** The Node tag: which of a stage's hosts an instance or address belongs to (1, 2, ...). */
export const NODE_TAG = 'Node'

/** Host n of a stage: `mymdb-<stage>` for the first (its name from before hosts had numbers), `mymdb-<stage>-<n>` for the others. */
export function nodeName(stage: string, node: number): string {
  return node === 1 ? stageName(stage) : `${stageName(stage)}-${node}`
}

/** The tags of host n's instance, disk and address: its name, the stage's tags, its number. */
export function nodeTags(stage: string, node: number): { Key: string; Value: string }[] {
  return [{ Key: 'Name', Value: nodeName(stage, node) }, ...stageTags(stage), { Key: NODE_TAG, Value: String(node) }]
}

/** The host a resource belongs to, from its tags; one without a Node tag (made before hosts had numbers) is host 1. */
export function nodeOf(tags: readonly { Key?: string; Value?: string }[] | undefined): number {
  const n = Number(tags?.find((t) => t.Key === NODE_TAG)?.Value)
  return Number.isInteger(n) && n >= 1 ? n : 1
}

/** A resource's Name tag, if it has one. */
export function nameTag(tags: readonly { Key?: string; Value?: string }[] | undefined): string | undefined {
  return tags?.find((t) => t.Key === 'Name')?.Value
}

/** The names of a stage's database on RDS and the private network it lives in. */
export function databaseResources(stage: string) {
  const base = stageName(stage)
  return {
    instance: base,
    subnetGroup: `${base}-db`,
    parameterGroup: `${base}-postgres17`,
    securityGroup: `${base}-db`,
    routeTable: `${base}-private`,
    subnet: (zone: string) => `${base}-db-${zone}`,
  }
}

/** The names of a stage's resources shared by its hosts (EC2 and IAM). */
export function stageResources(stage: string) {
  const base = stageName(stage)
  return {
    keyPair: base,
    securityGroup: `${base}-web`,
    role: `${base}-host`,
    instanceProfile: `${base}-host`,
    policy: `${base}-bucket`,
    backupRole: `${base}-backup`,
    backupPolicy: `${base}-backup-write`,
  }
}

/** The names of a stage's front door when it has several hosts: the load balancer and the fronts' shared storage. */
export function frontResources(stage: string) {
  const base = stageName(stage)
  return {
    /** The Network Load Balancer (AWS: at most 32 characters; the stage has at most 20). */
    balancer: base,
    /** Its target group for a port: mymdb-<stage>-http, -https. */
    targetGroup: (port: 80 | 443) => `${base}-${port === 80 ? 'http' : 'https'}`,
    /** The Elastic IP of the balancer in a zone (its Name tag). */
    address: (zone: string) => `${base}-front-${zone}`,
    /** The zone of the balancer's Elastic IP with this Name tag; undefined for any other name (a host's). */
    addressZone: (name: string | undefined): string | undefined => (name?.startsWith(`${base}-front-`) ? name.slice(`${base}-front-`.length) || undefined : undefined),
    /** The EFS file system (its creation token and Name tag). */
    fileSystem: `${base}-front`,
    /** The security group of its mount targets. */
    fsSecurityGroup: `${base}-front-nfs`,
  }
}
