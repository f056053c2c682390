export * from './redis';
export * from './cluster';
