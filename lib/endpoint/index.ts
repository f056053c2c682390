export {
  DEFAULT_CONNECT_TIMEOUT_MS,
  describeEndpoint,
  formatHostPort,
  parseSeeds,
  readEndpointSettings,
  resolveAuth,
  validateEndpointConfig,
  type AuthPair,
  type ClusterEndpointConfig,
  type EndpointConfig,
  type EndpointCredentials,
  type EndpointHandle,
  type EndpointSettings,
  type EndpointTls,
  type HostPort,
  type StandaloneEndpointConfig,
} from './config';
export { openSocket, SocketFault, unansweredFault, type SocketFaultCode, type SocketTarget } from './socket';
export { connectNode, createClient, toIoRedisOptions, toSocketOptions, type IoRedisTarget, type SocketOptions } from './client';
