/**
 * Versions: the source must speak PSYNC (2.8+); the destination should not be older than the
 * source (as managed sync services require: commands the source accepts may be unknown to an
 * older destination); and the sink copies keys fastest with RESTORE, which reads only payloads of
 * the destination's own RDB version or older.
 */
import type { PrecheckContext } from '../context';
import { compareVersions, parseVersion, rdbVersionOf, showVersion, type Version } from '../info';
import { SkipCheck, type Finding } from '../types';

export interface NodeVersion {
  address: string;
  version: Version;
}

export async function versions(ctx: PrecheckContext): Promise<Finding[]> {
  const read = (side: 'source' | 'destination'): NodeVersion[] => {
    const ep = ctx.endpoint(side);
    return ep.reachableMasters().map((m) => {
      const version = parseVersion(ep.info(m).redis_version);
      if (version === undefined) throw new SkipCheck(`${side} ${m.address}: INFO shows no redis_version`);
      return { address: m.address, version };
    });
  };
  const source = read('source');
  const destination = read('destination');
  if (source.length === 0 || destination.length === 0) return [];
  return versionFindings(source, destination, ctx.options.typedFallback);
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

  const srcRdb = rdbVersionOf(src.version);
  const dstRdb = rdbVersionOf(dst.version);
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
