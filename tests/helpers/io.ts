/** A scripted terminal for the command-line code (lib/cli/common.ts `Io`), recording its output. */
import type { Io } from "../../lib/cli/common.ts";

/** What a scripted terminal recorded: the lines written and the questions asked. */
export interface ScriptedIo {
  io: Io;
  out: string[];
  err: string[];
  asked: string[];
}

/**
 * An `Io` in `cwd` with the variables `env`. On a terminal (`replies` given) each question gets
 * the next reply in turn; null, or running out of replies, is the end of input.
 */
export function scriptedIo(
  cwd: string,
  options: { env?: Record<string, string>; replies?: (string | null)[] } = {},
): ScriptedIo {
  const out: string[] = [];
  const err: string[] = [];
  const asked: string[] = [];
  const replies = options.replies ? [...options.replies] : undefined;
  const io: Io = {
    out: (line) => out.push(line),
    err: (line) => err.push(line),
    interactive: replies !== undefined,
    ask: (question) => {
      asked.push(question);
      return replies?.length ? replies.shift()! : null;
    },
    cwd,
    env: (name) => options.env?.[name],
  };
  return { io, out, err, asked };
}
