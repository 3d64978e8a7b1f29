/** Lane 1 of the test files, in one test worker (see tests/groups/lanes.ts). */
import { runLane } from "./lanes.ts";

await runLane(1);
