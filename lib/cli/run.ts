/**
 * The setup and owner commands of the command line, each with its own options:
 * `init`, `check`, `clients`, `grants`. `main.ts` hands them the arguments after the command.
 */
import { runCheck } from "./check.ts";
import { type Io, processIo } from "./common.ts";
import { runInit } from "./init.ts";
import type { CliCommand } from "./options.ts";
import { runOwner } from "./owner.ts";

/** Runs one of the commands; returns the exit code. */
export function runCli(command: CliCommand, args: string[], io: Io = processIo()): Promise<number> {
  switch (command) {
    case "init":
      return runInit(args, io);
    case "check":
      return runCheck(args, io);
    case "clients":
    case "grants":
      return runOwner(command, args, io);
  }
}
