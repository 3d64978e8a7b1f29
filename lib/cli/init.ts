/**
 * `main.ts init`: the setup wizard. Takes (or, on a terminal, asks for) the tunnel, the public
 * URL, the GitHub OAuth App's client id, the variable holding its secret, the allowed GitHub user
 * and one server; shows a summary; writes a commented starter config (never over an existing
 * file) after running it through the real config parser; then prints the GitHub OAuth App
 * settings to enter, the tunnel's commands and the URLs to paste into ChatGPT and Claude.
 * The options are in init-flags.ts, the questions in init-prompts.ts, the config in
 * init-config.ts and what is printed in init-output.ts.
 */
import { absolutePath } from "../config/paths.ts";
import { type Io, notCapable } from "./common.ts";
import { describe, validate } from "./init-config.ts";
import { fromFlags, givenByFlags, INIT_USAGE } from "./init-flags.ts";
import { printNextSteps, summary } from "./init-output.ts";
import { askMissing } from "./init-prompts.ts";
import { INIT_SYNTAX, parseCommandLine } from "./options.ts";

/** Runs `init`; returns the exit code. */
export async function runInit(args: string[], io: Io): Promise<number> {
  let values;
  try {
    ({ values } = parseCommandLine(args, INIT_SYNTAX));
  } catch (error) {
    io.err(`error: ${(error as Error).message}\n\n${INIT_USAGE}`);
    return 2;
  }
  if (values.help) {
    io.out(INIT_USAGE);
    return 0;
  }
  const target = absolutePath(io.cwd, values.config ?? "./config.json");
  const refused = await refuseTarget(target, io);
  if (refused) return refused;

  const given = givenByFlags(values);
  const answers = io.interactive
    ? askMissing(given, { io, target, yes: values.yes ?? false })
    : fromFlags(given, io);
  if (typeof answers === "number") return answers;

  // What is written is exactly what was validated.
  const checked = validate(answers, target);
  if ("problems" in checked) {
    io.err(`error: these values do not make a valid config:\n  ${describe(checked.problems)}`);
    return 2;
  }
  const { text, config } = checked;
  if (io.interactive && !values.yes) {
    for (const line of summary(answers, config)) io.out(line);
    io.out("");
    const sure = io.ask(`Write ${target}? [Y/n]`);
    if (sure === null || /^n/i.test(sure.trim())) {
      io.err("Nothing written.");
      return 1;
    }
  }
  const written = await writeNew(target, text, io);
  if (written !== 0) return written;
  printNextSteps(io, answers, config, target);
  return 0;
}

/** Exit code 2 with the reason when `target` may not be written (something there, no flags). */
async function refuseTarget(target: string, io: Io): Promise<number | undefined> {
  const exists = await existing(target);
  if (exists === "capable") {
    io.err(
      `error: init may not look at ${target}: run it as "deno run --allow-read=${target} ` +
        `--allow-write=${target} main.ts init …", or use "deno task init", which grants exactly that`,
    );
    return 2;
  }
  if (exists) {
    io.err(
      `error: ${target} already exists; init never overwrites a file. ` +
        `Check it with "deno task check-config", or pass --config NEW_FILE to write another one.`,
    );
    return 2;
  }
  return undefined;
}

/** Creates `target` with `text`, only if nothing is there; the exit code. */
async function writeNew(target: string, text: string, io: Io): Promise<number> {
  try {
    // createNew: the file is created only if nothing is there, atomically.
    await Deno.writeTextFile(target, text, { createNew: true });
    return 0;
  } catch (error) {
    if (error instanceof Deno.errors.AlreadyExists) {
      io.err(`error: ${target} appeared meanwhile; init never overwrites a file. Nothing written.`);
      return 2;
    }
    if (notCapable(error)) {
      io.err(
        `error: init may not write ${target}: run it as "deno run --allow-read=${target} ` +
          `--allow-write=${target} main.ts init …", or use "deno task init", which grants exactly ` +
          `that`,
      );
      return 2;
    }
    const why = error instanceof Deno.errors.NotFound
      ? "its folder does not exist"
      : (error as Error).message;
    io.err(`error: cannot write ${target}: ${why}`);
    return 1;
  }
}

/** Whether something is at `path`; "capable" when the permission flags do not allow looking. */
async function existing(path: string): Promise<boolean | "capable"> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    if (notCapable(error)) return "capable";
    // Something is in the way (a file where a folder was expected, no access): writing will say.
    return false;
  }
}
