import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { ReplPosition } from './link';

/**
 * Where each source shard's replication stands, so a restart resumes with a partial
 * resync. Which position is stored is the owner's choice: the one handed downstream, or
 * (once a sink confirms) the one applied to the destination, which is what exactly-once
 * needs. Implementations must make `save` atomic: a crash leaves the old or the new value.
 */
export interface PositionStore {
  load(shard: string): Promise<ReplPosition | null>;
  save(shard: string, position: ReplPosition): Promise<void>;
  clear(shard: string): Promise<void>;
}

type FileContent = Record<string, ReplPosition & { savedAt: string }>;

/** Positions of all shards of one source in one JSON file, replaced by rename. */
export class FilePositionStore implements PositionStore {
  private cache: FileContent | null = null;
  private writing: Promise<void> = Promise.resolve();

  constructor(readonly path: string) {}

  async load(shard: string): Promise<ReplPosition | null> {
    const p = (await this.read())[shard];
    return p ? { replid: p.replid, offset: p.offset } : null;
  }

  save(shard: string, position: ReplPosition): Promise<void> {
    return this.update((c) => {
      c[shard] = { replid: position.replid, offset: position.offset, savedAt: new Date().toISOString() };
    });
  }

  clear(shard: string): Promise<void> {
    return this.update((c) => {
      delete c[shard];
    });
  }

  private async read(): Promise<FileContent> {
    if (this.cache !== null) return this.cache;
    try {
      const parsed = JSON.parse(await readFile(this.path, 'utf8')) as unknown;
      this.cache = isContent(parsed) ? parsed : {};
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
        throw new Error(`replication position file ${this.path} cannot be read: ${(err as Error).message}`, { cause: err });
      }
      this.cache = {};
    }
    return this.cache;
  }

  /** Writes are serialized, so an older position never overwrites a newer one; one failed write does not block the next. */
  private update(change: (c: FileContent) => void): Promise<void> {
    this.writing = this.writing.catch(() => undefined).then(async () => {
      const content = await this.read();
      change(content);
      await mkdir(dirname(this.path), { recursive: true });
      const tmp = `${this.path}.${process.pid}.tmp`;
      await writeFile(tmp, JSON.stringify(content, null, 2));
      await rename(tmp, this.path);
    });
    return this.writing;
  }
}

function isContent(v: unknown): v is FileContent {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  return Object.values(v).every((p) => typeof p === 'object' && p !== null && typeof (p as ReplPosition).replid === 'string' && Number.isSafeInteger((p as ReplPosition).offset));
}
