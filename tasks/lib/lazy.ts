// Heavy CommonJS packages (the AWS SDK clients ~0.2-0.6 s each, ssh2) loaded on first use, so
// that --help and the settings checks of every task start fast. A lazy module is used like the
// module itself: `new EC2.DescribeInstancesCommand(...)`.
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)

/** The package `id`, required the first time one of its exports is read. */
export function lazy<T extends object>(id: string): T {
  let mod: T | undefined
  return new Proxy({} as T, {
    get: (_target, prop) => Reflect.get((mod ??= require(id) as T), prop),
  })
}
