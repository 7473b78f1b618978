import { X509Certificate } from 'node:crypto';
import { expect, test } from 'vitest';
import { testPki } from './tls.ts';

test('the test PKI signs a localhost certificate with its CA', () => {
  const pki = testPki();
  const ca = new X509Certificate(pki.caCert);
  const cert = new X509Certificate(pki.cert);
  expect(cert.verify(ca.publicKey)).toBe(true);
  expect(cert.checkHost('localhost')).toBe('localhost');
  expect(cert.checkIP('127.0.0.1')).toBe('127.0.0.1');
  expect(new X509Certificate(pki.untrustedCert).verify(ca.publicKey)).toBe(false);
  expect(new X509Certificate(pki.wrongNameCert).checkHost('localhost')).toBeUndefined();
});
