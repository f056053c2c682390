/**
 * Applying a command whose keys span hash slots (SLOT_CROSS) to a cluster destination, with
 * the result the source had. The destination itself is the only input: with the operations
 * applied in order, its state before this command equals the source's before it, so what the
 * command reads is read there (no source read, no window between two systems).
 *
 * How each command is carried out (`a`, `b` in slots A ≠ B; "write in S" is one MULTI/EXEC
 * on the master of S):
 *
 * - Commands that read some keys and write one result key D in slot S (SUNIONSTORE,
 *   SINTERSTORE, SDIFFSTORE, ZUNIONSTORE, ZINTERSTORE, ZDIFFSTORE, ZRANGESTORE,
 *   GEOSEARCHSTORE, GEORADIUS[BYMEMBER] … STORE/STOREDIST, SORT … STORE, BITOP, PFMERGE,
 *   COPY): "co-locate then execute". Every key Ki outside S is read with DUMP and PTTL on
 *   its own master; then one write in S restores each as `{tag of S}redis-sync:tmp:<shard>:
 *   <offset>:<i>` (with its TTL, which COPY passes on; a missing Ki stays missing), runs the
 *   command with the temporary names and deletes them. The keys in S, D included, are used
 *   as they are, so PFMERGE keeps D's TTL and SDIFFSTORE d d a reads d, as on the source.
 * - RENAME a b, RENAMENX a b: DUMP + PTTL of a; write in B: RESTORE b (with a's TTL)
 *   REPLACE; write in A: DEL a. A master replicates RENAMENX only when it renamed (b did not
 *   exist; a failed one replies 0 and changes nothing), so both are carried out alike.
 * - SMOVE a b m: SISMEMBER a m (a master replicates SMOVE only when it moved m, but the
 *   check keeps a re-run harmless); write in B: SADD b m; write in A: SREM a m.
 * - LMOVE / BLMOVE a b from to, RPOPLPUSH / BRPOPLPUSH a b (RIGHT LEFT): v = LINDEX a 0 or
 *   -1; write in B: LPUSH/RPUSH b v; write in A: LPOP/RPOP a. (Masters replicate the
 *   blocking forms as LMOVE and RPOPLPUSH; the timeout is ignored.)
 * - LMPOP, BLMPOP, ZMPOP, BZMPOP, BLPOP, BRPOP, BZPOPMIN, BZPOPMAX: pop from the first key
 *   that exists, with one write in its slot (LPOP/RPOP/ZPOPMIN/ZPOPMAX key [count]). A
 *   master replicates these as that single-key pop already, so they reach a sink only from
 *   hand-made input.
 * - EVAL, EVALSHA, FCALL: a script can touch keys it does not declare and its body names
 *   keys as it likes, so it cannot be rewritten: a CrossSlotError. Redis 5+ replicates the
 *   effects of scripts (plain commands, wrapped in MULTI/EXEC) and 7+ only those, so this
 *   meets only sources that replicate scripts verbatim (Redis 3.2-4, or 5-6 with
 *   `lua-replicate-commands no`). Likewise SORT with BY/GET patterns that read other keys
 *   or with GET options (which a cluster refuses; a lone GET # is left out, as it stores
 *   what no GET stores), COPY … DB (a cluster has one database), and any command not
 *   listed here.
 *
 * Consistency window: the writes of one emulated command run on different masters one after
 * the other, so a reader of the destination can see an intermediate state: after RENAME's
 * RESTORE both a and b exist; after SMOVE's SADD m is in both sets; after LMOVE's push v is
 * in both lists. Co-located commands and the pops are a single write and show none. The
 * reads happen before the first write, on keys that no other operation is changing then (a
 * cross-slot command is a barrier for the slot router).
 *
 * For the sink author, on crashes: pass a StepLog. Every write of an emulation is one
 * MULTI/EXEC that also runs `log.record(slot)` (the sink's checkpoint for this operation in
 * that slot); before each write, `log.recorded(slot)` says whether a run that was cut short
 * already made it. The writes of one emulation are in distinct slots, so a checkpoint per
 * slot (per source shard: the offset of the last operation applied in the slot) is such a
 * log, and the whole emulated command stays one unit keyed by its offset: after a crash the
 * sink calls applyCrossSlot again for the same operation and it completes exactly the writes
 * that are missing. Without a log, a re-run after a crash is still exact for RENAME and
 * SMOVE (each step finds what the last one left and converges) and for a co-located command
 * that does not read its own result key, or reads it idempotently (SUNIONSTORE d d a,
 * PFMERGE); but a re-run ZUNIONSTORE d 2 d a adds a's scores twice, a re-run LMOVE pushes
 * its element twice and a re-run pop pops twice.
 */
import { isScript, Rule, ruleOf, sortOptions } from '../ops/commands';
import type { CommandOp } from '../ops/operation';
import { jsonBytes } from '../rdb/json';
import { hashTagForSlot, slotOf } from './slots';

export type Arg = Buffer | string | number;

/** Runs commands on the master that serves a slot; a sink implements it over its connections. */
export interface ClusterExecutor {
  /** One command, all of whose keys are in `slot`; replies with Buffers for bulk strings. */
  call(slot: number, args: Arg[]): Promise<unknown>;
  /** The commands as one MULTI/EXEC on the master of `slot`; the replies, or a rejection if any command failed. */
  multi(slot: number, commands: Arg[][]): Promise<unknown[]>;
}

/** The sink's checkpoint, per slot, for the operation being applied (see the file comment). */
export interface StepLog {
  /** Commands run in the same MULTI/EXEC as a write in `slot`, recording that it was made. */
  record(slot: number): Arg[][];
  /** Whether the write in `slot` for this operation was made already (by a run cut short). */
  recorded(slot: number): Promise<boolean>;
}

/** A cross-slot command that cannot be carried out on a cluster; names the command, where it was, and its keys. */
export class CrossSlotError extends Error {
  override readonly name = 'CrossSlotError';
  constructor(
    /** 'script': EVAL, EVALSHA, FCALL; 'unsupported': anything else without an emulation. */
    readonly reason: 'script' | 'unsupported',
    readonly command: string,
    readonly offset: number,
    readonly shard: string,
    readonly keys: Buffer[],
    why: string,
  ) {
    super(`${command} at offset ${offset} of ${shard} (keys ${keys.map(jsonBytes).join(', ')}): ${why}`);
  }
}

/**
 * Applies a command whose keys span slots (a SLOT_CROSS operation of the slot router) as
 * described in the file comment. A command whose keys are all in one slot is simply run
 * there. Rejects with a CrossSlotError for a command that has no emulation, before writing.
 */
export async function applyCrossSlot(op: CommandOp, exec: ClusterExecutor, log?: StepLog): Promise<void> {
  const keys = op.keys.map((k) => op.args[k]);
  if (keys.length === 0) throw new CrossSlotError('unsupported', op.name, op.offset, op.shard, keys, 'it has no key to place in a slot');
  const slots = keys.map(slotOf);
  const run = new Run(op, exec, log);
  if (slots.every((s) => s === slots[0])) return run.write(slots[0], [[op.name, ...op.args]]);
  if (isScript(op.name)) {
    throw new CrossSlotError('script', op.name, op.offset, op.shard, keys, `${SPAN}, and a script replicated verbatim cannot be made to run in one (sources on Redis 5+ replicate the effects of scripts instead)`);
  }
  const emulate = emulationOf(op.name);
  if (emulate === undefined) throw new CrossSlotError('unsupported', op.name, op.offset, op.shard, keys, `${SPAN}, and there is no way to apply ${op.name} across slots`);
  await emulate(run);
}

const SPAN = 'its keys are in different hash slots of the destination cluster';

/** One application of one operation: its writes, each with the log's record. */
class Run {
  constructor(
    readonly op: CommandOp,
    readonly exec: ClusterExecutor,
    private readonly log: StepLog | undefined,
  ) {}

  /** True when a run cut short made the write in `slot` already. */
  async done(slot: number): Promise<boolean> {
    return this.log !== undefined && (await this.log.recorded(slot));
  }

  async write(slot: number, commands: Arg[][]): Promise<void> {
    await this.exec.multi(slot, [...commands, ...(this.log?.record(slot) ?? [])]);
  }

  /** DUMP and PTTL of a key, atomically: null payload when it does not exist. */
  async dump(key: Buffer): Promise<{ payload: Buffer | null; ttl: number }> {
    const [payload, pttl] = await this.exec.multi(slotOf(key), [['DUMP', key], ['PTTL', key]]);
    return { payload: Buffer.isBuffer(payload) ? payload : null, ttl: Math.max(Number(pttl), 0) };
  }

  /** A temporary key in `slot`, named by the operation so that a re-run uses the same one. */
  tmpKey(slot: number, i: number): Buffer {
    return Buffer.from(`{${hashTagForSlot(slot)}}redis-sync:tmp:${this.op.shard}:${this.op.offset}:${i}`);
  }

  unsupported(why: string): CrossSlotError {
    const { name, offset, shard, keys, args } = this.op;
    return new CrossSlotError('unsupported', name, offset, shard, keys.map((k) => args[k]), `${SPAN}, and ${why}`);
  }
}

type Emulation = (run: Run) => Promise<void>;

function word(arg: Buffer | undefined): string {
  return arg === undefined ? '' : arg.toString('latin1').toUpperCase();
}

/**
 * Co-locate then execute: `result` gives the index in args of the key the command writes;
 * `edit` may change the arguments once the temporary names are in.
 */
function colocate(result: (run: Run) => number, edit: (args: Buffer[]) => Buffer[] = (args) => args): Emulation {
  return async (run) => {
    const { op } = run;
    const slot = slotOf(op.args[result(run)]);
    if (await run.done(slot)) return;
    const args = op.args.slice();
    const copies = new Map<string, { key: Buffer; tmp: Buffer }>();
    for (const k of op.keys) {
      const key = op.args[k];
      if (slotOf(key) === slot) continue;
      const id = key.toString('latin1');
      let copy = copies.get(id);
      if (copy === undefined) {
        copy = { key, tmp: run.tmpKey(slot, copies.size) };
        copies.set(id, copy);
      }
      args[k] = copy.tmp;
    }
    const dumps = await Promise.all([...copies.values()].map(async (c) => ({ ...c, ...(await run.dump(c.key)) })));
    const restores = dumps.flatMap((d) => (d.payload === null ? [] : [['RESTORE', d.tmp, d.ttl, d.payload, 'REPLACE']]));
    const cleanup = copies.size === 0 ? [] : [['DEL', ...dumps.map((d) => d.tmp)]];
    await run.write(slot, [...restores, [op.name, ...edit(args)], ...cleanup]);
  };
}

const rename: Emulation = async (run) => {
  const [src, dst] = run.op.args;
  const a = slotOf(src);
  const b = slotOf(dst);
  if (await run.done(a)) return;
  if (!(await run.done(b))) {
    const { payload, ttl } = await run.dump(src);
    if (payload === null) return;
    await run.write(b, [['RESTORE', dst, ttl, payload, 'REPLACE']]);
  }
  await run.write(a, [['DEL', src]]);
};

const smove: Emulation = async (run) => {
  const [src, dst, member] = run.op.args;
  const a = slotOf(src);
  const b = slotOf(dst);
  if (await run.done(a)) return;
  if (!(await run.done(b))) {
    if (Number(await run.exec.call(a, ['SISMEMBER', src, member])) !== 1) return;
    await run.write(b, [['SADD', dst, member]]);
  }
  await run.write(a, [['SREM', src, member]]);
};

/** LMOVE and its kin; `sides` gives the ends to pop from and push to. */
function listMove(sides: (args: Buffer[]) => [from: string, to: string]): Emulation {
  return async (run) => {
    const [src, dst] = run.op.args;
    const [from, to] = sides(run.op.args);
    const a = slotOf(src);
    const b = slotOf(dst);
    if (await run.done(a)) return;
    if (!(await run.done(b))) {
      const value = await run.exec.call(a, ['LINDEX', src, from === 'LEFT' ? 0 : -1]);
      if (!Buffer.isBuffer(value)) return;
      await run.write(b, [[to === 'LEFT' ? 'LPUSH' : 'RPUSH', dst, value]]);
    }
    await run.write(a, [[from === 'LEFT' ? 'LPOP' : 'RPOP', src]]);
  };
}

/** Pops with `pop(key)` from the first of `keys` that exists. */
async function popFirst(run: Run, keys: Buffer[], pop: (key: Buffer) => Arg[]): Promise<void> {
  for (const key of keys) {
    const slot = slotOf(key);
    if (await run.done(slot)) return;
    if (Number(await run.exec.call(slot, ['EXISTS', key])) === 1) return run.write(slot, [pop(key)]);
  }
}

/** LMPOP / ZMPOP and their blocking forms: [timeout] numkeys key … LEFT|RIGHT|MIN|MAX [COUNT n]. */
function multiPop(base: number, list: boolean): Emulation {
  return (run) => {
    const { args } = run.op;
    const n = Number(args[base]?.toString('latin1'));
    const where = word(args[base + 1 + n]);
    const count = word(args[base + 2 + n]) === 'COUNT' ? args[base + 3 + n] : '1';
    const pop = list ? (where === 'LEFT' ? 'LPOP' : 'RPOP') : where === 'MIN' ? 'ZPOPMIN' : 'ZPOPMAX';
    return popFirst(run, args.slice(base + 1, base + 1 + n), (key) => [pop, key, count]);
  };
}

/** BLPOP / BRPOP / BZPOPMIN / BZPOPMAX key … timeout. */
function blockingPop(pop: string): Emulation {
  return (run) => popFirst(run, run.op.args.slice(0, -1), (key) => [pop, key]);
}

/** The commands that write one key and only read the others (the table's STORE_FIRST / STORE_LAST): co-located. */
const storeFirst = colocate((run) => run.op.keys[0]);
const storeLast = colocate((run) => run.op.keys[run.op.keys.length - 1]);

function emulationOf(name: string): Emulation | undefined {
  if (Object.hasOwn(EMULATIONS, name)) return EMULATIONS[name];
  const rule = ruleOf(name);
  return rule === Rule.STORE_FIRST ? storeFirst : rule === Rule.STORE_LAST ? storeLast : undefined;
}

/** The commands carried out their own way. */
const EMULATIONS: Record<string, Emulation> = {
  COPY: (run) => {
    if (run.op.args.slice(2).some((a) => word(a) === 'DB')) throw run.unsupported('COPY … DB has no meaning on a cluster (it has one database)');
    return colocate(() => 1)(run);
  },
  SORT: (run) => {
    const { store, gets, patterns } = sortOptions(run.op.args);
    if (patterns.some((p) => run.op.args[p].includes('*'))) throw run.unsupported('its BY/GET patterns read keys that cannot be placed in one slot');
    if (store < 0) throw run.unsupported('SORT without STORE writes nothing');
    if (gets.length === 0) return colocate(() => store)(run);
    // A cluster refuses GET (Redis 7.0 even GET #); a lone GET # stores the elements themselves, as no GET does.
    const [get] = gets;
    if (gets.length > 1 || run.op.args[get + 1].toString('latin1') !== '#') throw run.unsupported('a cluster refuses its GET options');
    return colocate(() => store, (args) => [...args.slice(0, get), ...args.slice(get + 2)])(run);
  },
  RENAME: rename,
  RENAMENX: rename,
  SMOVE: smove,
  LMOVE: listMove((args) => [word(args[2]), word(args[3])]),
  BLMOVE: listMove((args) => [word(args[2]), word(args[3])]),
  RPOPLPUSH: listMove(() => ['RIGHT', 'LEFT']),
  BRPOPLPUSH: listMove(() => ['RIGHT', 'LEFT']),
  LMPOP: multiPop(0, true),
  BLMPOP: multiPop(1, true),
  ZMPOP: multiPop(0, false),
  BZMPOP: multiPop(1, false),
  BLPOP: blockingPop('LPOP'),
  BRPOP: blockingPop('RPOP'),
  BZPOPMIN: blockingPop('ZPOPMIN'),
  BZPOPMAX: blockingPop('ZPOPMAX'),
};
