/**
 * Cipher choice for the data path. TLS 1.3 only (both ends are our agents). AES-128-GCM first:
 * these machines have AES-NI and carry-less multiply, and 128-bit keys do ~30% less work than
 * 256-bit ones for the same strength against any practical attack; ChaCha20 stays as a fallback.
 */
export const tlsCipherOptions = {
  minVersion: 'TLSv1.3',
  ciphersuites: 'TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256',
} as const;
