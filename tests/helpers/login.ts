/**
 * The setup most sign-in tests share: the fake GitHub, a proxy whose login points at it (the
 * fixture server `fx` unless the config names others), both stopped after the test and the
 * proxy's output printed when it fails. One of these can serve many `t.step`s: isolate them by
 * user, client or token rather than by a fresh proxy.
 */
import type { FakeGitHub } from "../fixtures/fake-github.ts";
import { fakeGitHub, LOGIN_ENV, loginConfig } from "./oauth.ts";
import { fixtureServer, type ProxyProcess, type StartOptions, startProxy } from "./proxy.ts";

export interface Login {
  gh: FakeGitHub;
  proxy: ProxyProcess;
}

export interface LoginOptions {
  /** The `allow` section (alice only by default). */
  allow?: Record<string, unknown>;
  /** More config over `{ mcpServers: { fx }, github, allow }` (given the fake, e.g. for URLs). */
  config?: (gh: FakeGitHub) => Record<string, unknown>;
  /** Prepares the fake GitHub before the proxy starts (users, org memberships, apps). */
  setup?: (gh: FakeGitHub) => void | Promise<void>;
  /** Start options; `env` is added to the login environment. */
  start?: StartOptions;
  /** Use this fake GitHub (left running) instead of starting one. */
  gh?: FakeGitHub;
}

/** Starts the fake GitHub and a login proxy, runs `fn`, stops both. */
export async function withLogin(
  options: LoginOptions,
  fn: (login: Login) => Promise<unknown>,
): Promise<void> {
  const gh = options.gh ?? await fakeGitHub();
  try {
    await options.setup?.(gh);
    const proxy = await startProxy(
      {
        mcpServers: { fx: fixtureServer() },
        ...loginConfig(gh, options.allow),
        ...options.config?.(gh),
      },
      { ...options.start, env: { ...LOGIN_ENV, ...options.start?.env } },
    );
    try {
      await fn({ gh, proxy });
    } catch (error) {
      console.log(`--- proxy stdout ---\n${proxy.stdout()}\n--- proxy stderr ---\n${proxy.logs()}`);
      throw error;
    } finally {
      await proxy.stop();
    }
  } finally {
    if (!options.gh) await gh.close();
  }
}

/** Options of a step that may run beside others (`Promise.all` of steps): no sanitizers. */
export const CONCURRENT = { sanitizeOps: false, sanitizeResources: false, sanitizeExit: false };

/**
 * `t.step(name, fn)` on a shared proxy that prints the proxy's output when the step fails
 * (the runner reports the failure; the test goes on with the next step).
 */
export function step(
  t: Deno.TestContext,
  proxy: ProxyProcess,
  name: string,
  fn: () => Promise<void>,
  options: Partial<Deno.TestStepDefinition> = {},
): Promise<boolean> {
  return t.step({
    ...options,
    name,
    fn: async () => {
      try {
        await fn();
      } catch (error) {
        console.log(`--- proxy stderr ---\n${proxy.logs()}`);
        throw error;
      }
    },
  });
}
