/**
 * Versions: the source must speak PSYNC (2.8+); the destination should not be older than the
 * source (as managed sync services require: commands the source accepts may be unknown to an
 * older destination); the sink copies keys fastest with RESTORE, which reads only payloads of
 * the destination's own RDB version or older; and function libraries (7.0+) cannot go into a
 * destination before 7.0.
 */
import { rdbVersionOfServer } from '../../rdb';
import { RespError } from '../../resp/errors';
import type { RespValue } from '../../resp/parser';
import { compareVersions, parseVersion, showVersion, type Version } from '../../server/info';
import type { ProbeConnection } from '../connection';
import type { EndpointState, PrecheckContext } from '../context';
import { SkipCheck, type Finding } from '../types';
import { text } from '../values';

/** Function libraries (FUNCTION, FCALL) are new in Redis 7.0. */
const FUNCTIONS_SINCE: Version = [7, 0, 0];
const FUNCTIONS_SINCE_TEXT = '7.0';

export interface NodeVersion {
  address: string;
  version: Version;
}

export async function versions(ctx: PrecheckContext): Promise<Finding[]> {
  const source = mastersWithVersions(ctx.source);
  const destination = mastersWithVersions(ctx.destination);
  if (source.length === 0 || destination.length === 0) return [];
  return versionFindings(source, destination, ctx.options.typedFallback);
}

function mastersWithVersions(ep: EndpointState): Array<NodeVersion & { conn: ProbeConnection }> {
  return ep.reachableMasters().map((m) => {
    const version = parseVersion(ep.info(m).redis_version);
    if (version === undefined) throw new SkipCheck(`${ep.side} ${m.address}: INFO shows no redis_version`);
    return { address: m.address, version, conn: m.conn as ProbeConnection };
  });
}

/** The findings for given versions; the masters of one endpoint may differ (mid-upgrade). */
export function versionFindings(source: NodeVersion[], destination: NodeVersion[], typedFallback: boolean): Finding[] {
  const newest = (list: NodeVersion[]): NodeVersion => list.reduce((a, b) => (compareVersions(b.version, a.version) > 0 ? b : a));
  const oldest = (list: NodeVersion[]): NodeVersion => list.reduce((a, b) => (compareVersions(b.version, a.version) < 0 ? b : a));
  const describe = (list: NodeVersion[]): string => {
    const lo = oldest(list);
    const hi = newest(list);
    return compareVersions(lo.version, hi.version) === 0 ? showVersion(lo.version) : `${showVersion(lo.version)} to ${showVersion(hi.version)}`;
  };
  const src = newest(source);
  const dst = oldest(destination);
  const findings: Finding[] = [];
  const tooOld = oldest(source);
  if (compareVersions(tooOld.version, [2, 8, 0]) < 0) {
    findings.push({
      id: 'versions',
      severity: 'error',
      side: 'source',
      node: tooOld.address,
      message: `source ${tooOld.address} runs Redis ${showVersion(tooOld.version)}: replication with PSYNC needs 2.8 or later`,
      remedy: 'upgrade the source to Redis 2.8 or later',
    });
  }
  const both = `source redis_version ${describe(source)}, destination ${describe(destination)}`;
  if (compareVersions(dst.version, src.version) < 0) {
    findings.push({
      id: 'versions',
      severity: 'warning',
      side: 'destination',
      node: dst.address,
      message: `${both}: the destination (${dst.address}, ${showVersion(dst.version)}) is older than the source (${src.address}, ${showVersion(src.version)}); commands and encodings the source accepts may be unknown to it`,
      remedy: `use a destination of Redis ${showVersion(src.version)} or later, or make sure the source uses nothing newer than ${showVersion(dst.version)} knows`,
    });
  } else if (findings.length === 0) {
    findings.push({ id: 'versions', severity: 'info', message: both, remedy: '' });
  }

  const srcRdb = rdbVersionOfServer(src.version);
  const dstRdb = rdbVersionOfServer(dst.version);
  if (srcRdb > dstRdb) {
    const message = `the source ${src.address} (Redis ${showVersion(src.version)}) writes RDB version ${srcRdb}, the destination ${dst.address} (Redis ${showVersion(dst.version)}) reads RDB up to ${dstRdb}: RESTORE would refuse the source's payloads`;
    findings.push(
      typedFallback
        ? {
            id: 'rdb-version',
            severity: 'warning',
            side: 'destination',
            node: dst.address,
            message: `${message}, so the sink writes every key with typed commands (slower${srcRdb >= 12 ? '; expirations of single hash fields, new in 7.4, are dropped' : ''})${dstRdb >= 9 ? ", but streams, which it re-encodes for the destination's RDB version and RESTOREs" : ''}`,
            remedy: `for RESTORE, use a destination of Redis ${showVersion(src.version)} or later`,
          }
        : {
            id: 'rdb-version',
            severity: 'error',
            side: 'destination',
            node: dst.address,
            message: `${message}, and the typed-commands fallback is not allowed`,
            remedy: `use a destination of Redis ${showVersion(src.version)} or later, or allow the typed-commands fallback`,
          },
    );
  } else {
    findings.push({ id: 'rdb-version', severity: 'info', message: `the destination reads RDB ${dstRdb}, the source writes RDB ${srcRdb}: keys are copied with RESTORE`, remedy: '' });
  }
  return findings;
}

/**
 * Function libraries: a destination before 7.0 cannot hold the source's (the sink drops them,
 * counted), so whatever calls them with FCALL fails there after the cutover. The source is
 * asked (FUNCTION LIST) only then, so a user who may not list functions is not bothered where
 * the answer changes nothing.
 */
export async function functions(ctx: PrecheckContext): Promise<Finding[]> {
  const source = mastersWithVersions(ctx.source);
  const destination = mastersWithVersions(ctx.destination);
  if (source.length === 0 || destination.length === 0) return [];
  const withFunctions = source.filter((s) => compareVersions(s.version, FUNCTIONS_SINCE) >= 0);
  if (withFunctions.length === 0 || destination.every((d) => compareVersions(d.version, FUNCTIONS_SINCE) >= 0)) return functionFindings(null, source, destination);
  const libraries = new Set<string>();
  for (const m of withFunctions) {
    const reply = await m.conn.call(['FUNCTION', 'LIST']);
    if (!Array.isArray(reply)) throw new SkipCheck(`source ${m.address}: FUNCTION LIST refused (${reply instanceof RespError ? reply.message : String(reply)})`);
    // RESP2: per library a flat [library_name, <name>, engine, <engine>, functions, [...]]
    for (const lib of reply) {
      const at = Array.isArray(lib) ? lib.findIndex((v) => text(v) === 'library_name') : -1;
      if (at >= 0) libraries.add(text((lib as RespValue[])[at + 1]));
    }
  }
  return functionFindings([...libraries], source, destination);
}

/**
 * The findings for the source's function libraries (null: not listed, as nothing depends on
 * them: the source is older than 7.0, or every destination master holds them) and the
 * masters' versions.
 */
export function functionFindings(libraries: string[] | null, source: NodeVersion[], destination: NodeVersion[]): Finding[] {
  const oldest = destination.reduce((a, b) => (compareVersions(b.version, a.version) < 0 ? b : a));
  if (source.every((s) => compareVersions(s.version, FUNCTIONS_SINCE) < 0)) {
    return [{ id: 'functions', severity: 'info', side: 'source', message: `the source has no function libraries (new in Redis ${FUNCTIONS_SINCE_TEXT})`, remedy: '' }];
  }
  if (libraries === null) {
    return [{ id: 'functions', severity: 'info', message: `the destination (Redis ${showVersion(oldest.version)}) holds function libraries: the source's are copied`, remedy: '' }];
  }
  if (libraries.length === 0) return [{ id: 'functions', severity: 'info', side: 'source', message: 'the source has no function libraries (FUNCTION LIST)', remedy: '' }];
  const n = libraries.length;
  const names = [...libraries].sort().map((l) => `"${l}"`).join(', ');
  return [{
    id: 'functions',
    severity: 'warning',
    side: 'destination',
    node: oldest.address,
    message: `${n} function ${n === 1 ? 'library' : 'libraries'} on the source (${names}) cannot be copied to Redis ${showVersion(oldest.version)} (${oldest.address}): FCALL will fail there after cutover; the sink drops every FUNCTION command, counted (droppedFunctions in its stats)`,
    remedy: `use a destination of Redis ${FUNCTIONS_SINCE_TEXT} or later, or before the cutover move what calls these functions (FCALL) to scripts the destination runs (EVAL)`,
  }];
}
