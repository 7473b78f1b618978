/// <reference types="@cloudflare/vitest-plugin/types" />
// Types for the tests: the main module's exports (ctx.exports / `exports` from cloudflare:workers)
// and the bindings the vitest config adds (see workers/vitest.config.ts).
type MailerWorkerEnv = import('../src/config.ts').Env;

declare namespace Cloudflare {
  interface GlobalProps {
    mainModule: typeof import('../src/index.ts');
  }
  interface Env extends MailerWorkerEnv {
    CALLER: Fetcher;
  }
}
