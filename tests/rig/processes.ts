// The processes of a container as its own run script made them: pid 1 and its descendants, each
// with its name and real, effective, saved and file-system uid. Processes that `docker exec` starts
// (the listing itself, a health check caught mid-run, runc's init of either) have no parent in the
// container and are left out, so what a test asserts about users is about the container's services.

/** Shell script (run inside the container) that prints "pid ppid name ruid euid suid fsuid" per process. */
export const PROCESS_LIST_SCRIPT =
  'for s in /proc/[0-9]*/status; do awk \'/^Name:/{n=$2} /^Pid:/{p=$2} /^PPid:/{pp=$2} /^Uid:/{u=$2" "$3" "$4" "$5} END{if (p) print p, pp, n, u}\' "$s" 2>/dev/null; done'

export interface ContainerProcess {
  name: string
  uids: string[]
}

/** pid 1 and its descendants from PROCESS_LIST_SCRIPT's output. */
export function containerTree(listed: string): ContainerProcess[] {
  const rows = listed
    .trim()
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .filter((r) => r.length >= 7)
    .map((r) => ({ pid: r[0]!, ppid: r[1]!, name: r.slice(2, -4).join(' '), uids: r.slice(-4) }))
  const inTree = new Set(['1'])
  let grew = true
  while (grew) {
    grew = false
    for (const r of rows) {
      if (!inTree.has(r.pid) && inTree.has(r.ppid)) {
        inTree.add(r.pid)
        grew = true
      }
    }
  }
  return rows.filter((r) => inTree.has(r.pid)).map(({ name, uids }) => ({ name, uids }))
}
