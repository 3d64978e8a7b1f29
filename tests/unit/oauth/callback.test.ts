import assert from "node:assert/strict";
import { gitHubRefusal, policyRefusal, serverRefusal } from "../../../lib/oauth/callback.ts";
import { REDIRECTED_CHECKS } from "../../../lib/oauth/authorize.ts";
import { GitHubError } from "../../../lib/oauth/github.ts";

const signIn = {
  token: { accessToken: "gho_secret", scope: "" },
  user: { id: 7, login: "octo" },
};

Deno.test("callback: GitHub's access_denied (the person declined there) is access_denied", () => {
  const refusal = gitHubRefusal(new GitHubError("GitHub refused", "access_denied"), "c1");
  assert.equal(refusal.error, "access_denied");
  assert.equal(refusal.outcome, "failed");
  assert.equal(refusal.description, "GitHub sign-in did not complete");
  assert.deepEqual(refusal.fields, { client: "c1", reason: "GitHub refused" });
  assert.equal(refusal.refusedUser, undefined, "no page: the client is told directly");
  assert.equal(refusal.githubToken, undefined);
});

Deno.test("callback: any other GitHub failure is server_error, never access_denied", () => {
  for (
    const error of [new GitHubError("bad code", "bad_verification_code"), new GitHubError("5xx")]
  ) {
    const refusal = gitHubRefusal(error, "c1");
    assert.equal(refusal.error, "server_error");
    assert.equal(refusal.fields.reason, error.message);
  }
  // A network failure's message (sockets, OS errors) is not logged as the reason.
  const refusal = gitHubRefusal(new TypeError("connection refused 10.0.0.1:443"), "c1");
  assert.equal(refusal.error, "server_error");
  assert.equal(refusal.fields.reason, "GitHub could not be reached");
});

Deno.test("callback: an unanswered membership check is temporarily_unavailable, no page", () => {
  const verdict = { allowed: false as const, reason: "cannot check", transient: true };
  const refusal = policyRefusal(verdict, signIn, "c1");
  assert.equal(refusal.error, "temporarily_unavailable");
  assert.equal(refusal.outcome, "failed");
  assert.equal(refusal.refusedUser, undefined, "no decision, so no 'not allowed' page");
  assert.equal(refusal.githubToken, "gho_secret", "the GitHub token is revoked");
  assert.deepEqual(refusal.fields, {
    user_id: 7,
    login: "octo",
    client: "c1",
    reason: "cannot check",
  });
});

Deno.test("callback: a definite no is access_denied with a page naming the account", () => {
  const verdict = { allowed: false as const, reason: "not on the allow-list" };
  const refusal = policyRefusal(verdict, signIn, "c1");
  assert.equal(refusal.error, "access_denied");
  assert.equal(refusal.outcome, "refused");
  assert.equal(refusal.description, "this GitHub account is not allowed");
  assert.deepEqual(refusal.refusedUser, signIn.user);
  assert.equal(refusal.githubToken, "gho_secret", "the GitHub token is revoked");
});

Deno.test("callback: a server's own allow says no: the unknown-resource error, no page naming the account", () => {
  const verdict = { allowed: false as const, reason: "not on the allow-list" };
  const refusal = serverRefusal(verdict, signIn, "c1", "files");
  // The very error /authorize gives a resource that is not an endpoint of the proxy.
  const unknown = REDIRECTED_CHECKS.at(-1)!(new URLSearchParams(), () => null);
  assert.deepEqual([refusal.error, refusal.description], unknown);
  assert.equal(refusal.outcome, "refused");
  assert.equal(refusal.refusedUser, undefined, "no page: it would say the server exists");
  assert.equal(refusal.githubToken, "gho_secret", "the GitHub token is revoked");
  assert.equal(refusal.fields.server, "files", "the owner's log names the server");
});

Deno.test("callback: a server's unanswered membership check is temporarily_unavailable, as for the global list", () => {
  const verdict = { allowed: false as const, reason: "cannot check", transient: true };
  const refusal = serverRefusal(verdict, signIn, "c1", "files");
  assert.equal(refusal.error, "temporarily_unavailable");
  assert.equal(refusal.outcome, "failed");
});
