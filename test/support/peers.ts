/**
 * Real third-party SMTP peers for the interop suite (`npm run test:interop`): start and stop
 * servers (postfix smtp-sink, a private postfix, aiosmtpd, exim) on free 127.0.0.1 ports, and run
 * clients (smtp-source, swaks, msmtp, python smtplib, exim). Everything a peer received can be read
 * back (bytes and envelope) so tests compare exactly. See docs/explanation/interop.md.
 */
export * from './peers/aiosmtpd.ts';
export * from './peers/clients.ts';
export * from './peers/exim.ts';
export * from './peers/postfix.ts';
export * from './peers/postfix-tools.ts';
export * from './peers/process.ts';
export * from './peers/proxy.ts';
