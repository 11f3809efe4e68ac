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

/** The names of a stage's host resources (EC2 and IAM). */
export function stageResources(stage: string) {
  const base = stageName(stage)
  return {
    instance: base,
    keyPair: base,
    elasticIp: base,
    securityGroup: `${base}-web`,
    role: `${base}-host`,
    instanceProfile: `${base}-host`,
    policy: `${base}-bucket`,
    backupRole: `${base}-backup`,
    backupPolicy: `${base}-backup-write`,
  }
}
