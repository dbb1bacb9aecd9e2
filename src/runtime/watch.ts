import { watch, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';

/**
 * Calls `onChange` once a config file has changed and stayed quiet for `debounceMs`. The directory is watched,
 * not the file: editors save by writing a new file and renaming it over the old one, and Kubernetes updates a
 * mounted ConfigMap by swapping a symlink, both of which a watch on the old file's inode would miss.
 */
export function watchConfig(file: string, onChange: () => void, debounceMs = 250): { close(): void } {
  const name = basename(file);
  let timer: NodeJS.Timeout | null = null;
  let watcher: FSWatcher;
  try {
    watcher = watch(dirname(file), { persistent: false }, (_event, changed) => {
      // ConfigMap updates rename "..data", not the file itself.
      if (changed !== null && changed !== name && !String(changed).startsWith('..')) return;
      if (timer !== null) clearTimeout(timer);
      timer = setTimeout(() => { timer = null; onChange(); }, debounceMs);
      timer.unref();
    });
  } catch {
    return { close() {} };
  }
  return { close() { if (timer !== null) clearTimeout(timer); watcher.close(); } };
}
