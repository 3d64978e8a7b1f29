import assert from "node:assert/strict";
import { RangeDocumentError, validateRangeDocument } from "../../../lib/edge/ranges.ts";
import { RangeSourceError, validateSourceUrl } from "../../../lib/config/network-rules.ts";

const GOOD = JSON.stringify({
  creationTime: "2025-05-01T00:00:00.000000",
  prefixes: [{ ipv4Prefix: "23.102.140.112/28" }, { ipv6Prefix: "2603:1030:a::/48" }],
});

Deno.test("validateRangeDocument: a good mixed v4/v6 document", () => {
  const doc = validateRangeDocument(GOOD);
  assert.deepEqual(doc, {
    creationTime: "2025-05-01T00:00:00.000000",
    prefixes: ["23.102.140.112/28", "2603:1030:a::/48"],
  });
  // Extra fields are tolerated; host bits are normalised; creationTime is optional.
  const extra = validateRangeDocument(
    '{"syncToken":"1","prefixes":[{"ipv4Prefix":"10.1.2.3/8","service":"x"}]}',
  );
  assert.deepEqual(extra, { prefixes: ["10.0.0.0/8"] });
  // A BOM-free UTF-8 document with whitespace is fine.
  assert.equal(validateRangeDocument(`\n ${GOOD} \n`).prefixes.length, 2);
});

Deno.test("validateRangeDocument: each malformed shape is rejected with a clear reason", () => {
  const cases: [string, RegExp][] = [
    ["", /not valid JSON/],
    ["<html>moved</html>", /not valid JSON/],
    ['{"prefixes":[', /not valid JSON/],
    ["[]", /top level is not a JSON object/],
    ["null", /top level is not a JSON object/],
    ['"prefixes"', /top level is not a JSON object/],
    ["{}", /prefixes is not an array/],
    ['{"prefixes":{"ipv4Prefix":"1.2.3.0/24"}}', /prefixes is not an array/],
    ['{"prefixes":[]}', /prefixes is empty/],
    ['{"prefixes":[{"ipv4Prefix":"1.2.3.0/24"}],"creationTime":5}', /creationTime is not a string/],
    ['{"prefixes":["1.2.3.0/24"]}', /prefixes\[0\] is not an object/],
    ['{"prefixes":[null]}', /prefixes\[0\] is not an object/],
    ['{"prefixes":[{}]}', /prefixes\[0\] must have exactly one of ipv4Prefix or ipv6Prefix/],
    [
      '{"prefixes":[{"ipv4Prefix":"1.2.3.0/24","ipv6Prefix":"2001:db8::/32"}]}',
      /prefixes\[0\] must have exactly one/,
    ],
    ['{"prefixes":[{"ipPrefix":"1.2.3.0/24"}]}', /prefixes\[0\] must have exactly one/],
    ['{"prefixes":[{"ipv4Prefix":null}]}', /prefixes\[0\]\.ipv4Prefix is not a string/],
    ['{"prefixes":[{"ipv4Prefix":"1.2.3.0/33"}]}', /prefixes\[0\]\.ipv4Prefix: .*out of range/],
    ['{"prefixes":[{"ipv4Prefix":"1.2.3/24"}]}', /prefixes\[0\]\.ipv4Prefix: .*not an IP/],
    ['{"prefixes":[{"ipv4Prefix":"2001:db8::/32"}]}', /prefixes\[0\]\.ipv4Prefix holds an IPv6/],
    ['{"prefixes":[{"ipv6Prefix":"1.2.3.0/24"}]}', /prefixes\[0\]\.ipv6Prefix holds an IPv4/],
    ['{"prefixes":[{"ipv4Prefix":"::ffff:1.2.3.0/120"}]}', /ipv4Prefix holds an IPv6/],
  ];
  for (const [text, reason] of cases) {
    assert.throws(() => validateRangeDocument(text), (e: unknown) => {
      assert.ok(e instanceof RangeDocumentError, `${text}: wrong error type ${e}`);
      assert.match(e.message, reason, text);
      return true;
    });
  }
});

Deno.test("validateRangeDocument: one bad entry rejects the whole document, naming its index", () => {
  const prefixes: Record<string, string>[] = [];
  for (let i = 0; i < 50; i++) prefixes.push({ ipv4Prefix: `10.${i}.0.0/16` });
  prefixes.splice(37, 0, { ipv4Prefix: "10.99.0.0/16 " });
  assert.throws(
    () => validateRangeDocument(JSON.stringify({ prefixes })),
    /^RangeDocumentError: prefixes\[37\]\.ipv4Prefix: "10\.99\.0\.0\/16 ": prefix length must be/,
  );
});

// ---------------------------------------------------------------- validateSourceUrl

Deno.test("validateSourceUrl: https anywhere, http only to loopback", () => {
  assert.equal(
    validateSourceUrl("https://openai.com/chatgpt-actions.json"),
    "https://openai.com/chatgpt-actions.json",
  );
  assert.equal(validateSourceUrl("http://127.0.0.1:8080/r.json"), "http://127.0.0.1:8080/r.json");
  assert.equal(validateSourceUrl("http://[::1]:8080/r.json"), "http://[::1]:8080/r.json");
  assert.equal(validateSourceUrl("http://localhost/r.json"), "http://localhost/r.json");
  const bad = [
    "http://openai.com/chatgpt-actions.json",
    "http://127.0.0.2/r.json",
    "http://localhost.example.com/r.json",
    "ftp://127.0.0.1/r.json",
    "file:///etc/passwd",
    "data:application/json,{}",
    "https://user:pw@openai.com/r.json",
    "https://user@openai.com/r.json",
    "https://openai.com/r.json#x",
    "https://openai.com/r.json#",
    " https://openai.com/r.json",
    "openai.com/r.json",
    "",
  ];
  for (const url of bad) assert.throws(() => validateSourceUrl(url), RangeSourceError, url);
});
