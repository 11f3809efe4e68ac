// The stage's EC2 key pair `mymdb-<stage>`. EC2 keeps only the public key: the private key is
// the local file MYMDB_SSH_KEY_FILE, created with the key pair or imported from it.
import { UserError } from '../errors.ts'
import type { Log } from '../log.ts'
import { stageResources, stageTags } from '../names.ts'
import { saveKeyFile, type KeyFile } from '../sshkey.ts'
import { EC2, aws, awsErrorCode, explainAwsError, type AwsClients } from './clients.ts'
import type { PlanLine } from './plan.ts'

export type KeyPairAction = 'exists' | 'import' | 'create'

/** What to do about the key pair, given whether EC2 has it and whether the local file exists. */
export function keyPairAction(inEc2: boolean, fileExists: boolean, keyName: string, path: string): KeyPairAction {
  if (inEc2 && fileExists) return 'exists'
  if (inEc2)
    throw new UserError(
      `key pair ${keyName} exists in EC2 but its private key file ${path} does not, and EC2 cannot give the private key again: ` +
        `point MYMDB_SSH_KEY_FILE at the file you have, or delete the key pair (npm run destroy:aws, or aws ec2 delete-key-pair --key-name ${keyName}) so a new one is made`,
    )
  return fileExists ? 'import' : 'create'
}

export interface KeyPairPlan {
  action: KeyPairAction
  keyFile: KeyFile
}

/** What to do about the stage's key pair, and its plan line (pure). */
export function planKeyPair(stage: string, inEc2: boolean, keyFile: KeyFile): KeyPairPlan & { line: PlanLine } {
  const name = stageResources(stage).keyPair
  const action = keyPairAction(inEc2, keyFile.exists, name, keyFile.path)
  const detail =
    action === 'exists' ? `private key ${keyFile.path}` : action === 'import' ? `public key of ${keyFile.path}` : `ed25519, private key saved to ${keyFile.path}`
  return { action, keyFile, line: { resource: `key pair ${name}`, action, detail } }
}

export async function keyPairExists(clients: AwsClients, name: string): Promise<boolean> {
  try {
    const r = await clients.ec2.send(new EC2.DescribeKeyPairsCommand({ KeyNames: [name] }))
    return (r.KeyPairs ?? []).some((k) => k.KeyName === name)
  } catch (err) {
    if (awsErrorCode(err) === 'InvalidKeyPair.NotFound') return false
    throw explainAwsError(err, 'look up the key pair')
  }
}

export async function applyKeyPair(clients: AwsClients, plan: { stage: string; keyPair: KeyPairPlan }, log: Log): Promise<void> {
  const name = stageResources(plan.stage).keyPair
  const { action, keyFile } = plan.keyPair
  const TagSpecifications = [{ ResourceType: 'key-pair' as const, Tags: [{ Key: 'Name', Value: name }, ...stageTags(plan.stage)] }]
  if (action === 'import' && keyFile.exists) {
    await aws('import the key pair', () =>
      clients.ec2.send(new EC2.ImportKeyPairCommand({ KeyName: name, PublicKeyMaterial: Buffer.from(keyFile.publicKey), TagSpecifications })),
    )
    log.info(`[host] key pair ${name}: imported the public key of ${keyFile.path}`)
  } else if (action === 'create') {
    const r = await aws('create the key pair', () =>
      clients.ec2.send(new EC2.CreateKeyPairCommand({ KeyName: name, KeyType: 'ed25519', KeyFormat: 'pem', TagSpecifications })),
    )
    try {
      if (!r.KeyMaterial) throw new Error('CreateKeyPair returned no private key')
      saveKeyFile(keyFile.path, r.KeyMaterial)
    } catch (err) {
      // Without the private key the key pair is useless: remove it so that the next run can make it again.
      await clients.ec2.send(new EC2.DeleteKeyPairCommand({ KeyName: name })).catch(() => undefined)
      throw new UserError(
        `could not save the private key of ${name} to ${keyFile.path} (${err instanceof Error ? err.message : String(err)}); the key pair was deleted again: fix the directory or set MYMDB_SSH_KEY_FILE`,
      )
    }
    log.info(`[host] key pair ${name}: created; private key saved to ${keyFile.path} (mode 0600)`)
  }
}

/** Deletes the key pair from EC2 (the local private key file is the caller's business). */
export async function deleteKeyPair(clients: AwsClients, name: string): Promise<void> {
  await aws('delete the key pair', () => clients.ec2.send(new EC2.DeleteKeyPairCommand({ KeyName: name })))
}
