/** Share 6 of the end-to-end test files, in one test worker (see tests/groups/e2e.ts). */
import { runE2eShare } from "./e2e.ts";

await runE2eShare(6);
