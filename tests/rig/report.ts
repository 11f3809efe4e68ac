/**
 * A task's output as an assertion message: its last lines first (where a failure says why; a
 * summary that shows only a message's beginning shows them: CI's shows about 14 lines), then all
 * of it.
 */
export function lastLinesFirst(text: string, n = 12): string {
  const lines = text.trimEnd().split('\n')
  if (lines.length <= n) return text
  return [`(the last ${n} lines first; all of the output below)`, ...lines.slice(-n), '---', text].join('\n')
}
