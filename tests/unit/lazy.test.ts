import assert from "node:assert/strict";
import { lazyImport, LazyImportError } from "../../lib/lazy.ts";

Deno.test("lazyImport: two first calls at once load the module once; later calls reuse it", async () => {
  let loads = 0;
  const gate = Promise.withResolvers<{ value: number }>();
  const load = lazyImport("a test module", () => {
    loads++;
    return gate.promise;
  });
  const first = load();
  const second = load();
  gate.resolve({ value: 42 });
  const [a, b] = await Promise.all([first, second]);
  assert.equal(loads, 1);
  assert.equal(a, b);
  assert.equal((await load()).value, 42);
  assert.equal(loads, 1);
});

Deno.test("lazyImport: a failed load names what could not be loaded, and the next call tries again", async () => {
  let loads = 0;
  const load = lazyImport("the MCP 2026-07-28 lane", () => {
    loads++;
    return loads === 1
      ? Promise.reject(new TypeError("Too many open files (os error 24)"))
      : Promise.resolve({ ok: true });
  });
  const failures = await Promise.allSettled([load(), load()]);
  assert.equal(loads, 1);
  for (const failure of failures) {
    assert.equal(failure.status, "rejected");
    const error = (failure as PromiseRejectedResult).reason;
    assert.ok(error instanceof LazyImportError);
    assert.equal(
      error.message,
      "cannot load the MCP 2026-07-28 lane: Too many open files (os error 24)",
    );
    assert.ok(error.cause instanceof TypeError);
  }
  assert.deepEqual(await load(), { ok: true });
  assert.equal(loads, 2);
});

Deno.test("lazyImport: a real dynamic import of a missing module fails with a clear error", async () => {
  const missing = new URL("./no-such-module.ts", import.meta.url).href;
  const load = lazyImport("a module that is not there", () => import(missing));
  await assert.rejects(load(), (error: Error) => {
    assert.ok(error instanceof LazyImportError);
    assert.match(error.message, /^cannot load a module that is not there: .*no-such-module\.ts/);
    return true;
  });
});
