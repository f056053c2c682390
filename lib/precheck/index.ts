export { runPrecheck, runCheck, CHECKS, type Check, type PrecheckInput } from './runner';
export { PrecheckContext } from './context';
export { SkipCheck, type Finding, type PrecheckOptions, type PrecheckReport, type Severity, type Side } from './types';
export { functionFindings, versionFindings } from './checks/versions';
export { moduleFindings } from './checks/modules';
export { databaseFindings, type DbFacts } from './checks/databases';
export { aclAllows } from './checks/replication';
