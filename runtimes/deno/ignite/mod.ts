/**
 * Ignite's Deno SDK: `start(handle)` serves one handler over the platform's
 * pod protocol (docs/pod-protocol.md in the Ignite repository).
 *
 * ```ts
 * import { start } from "ignite";
 *
 * start((payload, ctx) => {
 *   const { name = "world" } = JSON.parse(new TextDecoder().decode(payload) || "{}");
 *   return { greeting: `Hello, ${name}!`, execution_id: ctx.executionId };
 * });
 * ```
 *
 * The SDK owns the HTTP server: it listens on the unix socket named by
 * `IGNITE_SOCKET` (or on `IGNITE_PORT`), answers the readiness probe, passes
 * every other request's raw body to the handler, encodes the result, turns a
 * thrown error into `500 {"error": ...}` while the process keeps serving, and
 * drains in-flight requests on SIGTERM.
 *
 * @module
 */

import { encodeResult, errorResponse } from "./encoding.ts";

/** What a handler knows about the invocation it answers. */
export interface Context {
  /** This invocation's id (a ULID). */
  executionId: string;
  /** The app's id, `"org/name"`. */
  functionId: string;
  /** The owning organization's id. */
  organizationId: string;
  /** The inbound request's headers. */
  headers: Headers;
}

/**
 * Answers one invocation. `payload` is the raw request body. The result is
 * encoded by type: a `Uint8Array` is sent as is (`application/octet-stream`),
 * a `string` as UTF-8 text (`text/plain; charset=utf-8`), anything else as
 * JSON (`application/json`). A returned promise is awaited first.
 */
export type Handler = (payload: Uint8Array, ctx: Context) => unknown;

/** Paths under this prefix belong to the platform, never to the app. */
const PLATFORM_PREFIX = "/_ignite/";

/** Set by bootstrap.ts while a pre-started pod imports the app. */
const PRESTARTED = Symbol.for("ignite.prestarted");

/**
 * Serves `handle` until the platform stops the pod. Call it once, at the top
 * level of the entry module.
 */
export function start(handle: Handler): void {
  const functionId = Deno.env.get("IGNITE_FUNCTION_ID") ?? "";
  const organizationId = Deno.env.get("IGNITE_ORGANIZATION_ID") ?? "";

  const serve = async (request: Request): Promise<Response> => {
    const path = new URL(request.url).pathname;
    if (path === `${PLATFORM_PREFIX}health`) {
      // The handler is imported before the server starts: ready when listening.
      return Response.json({ ok: true });
    }
    if (path === `${PLATFORM_PREFIX}load`) {
      return errorResponse(409, "this runtime starts with its code and cannot be loaded");
    }
    if (path.startsWith(PLATFORM_PREFIX)) {
      return errorResponse(404, "unknown platform endpoint");
    }
    const ctx: Context = {
      executionId: request.headers.get("x-ignite-execution-id") ?? "",
      functionId,
      organizationId,
      headers: request.headers,
    };
    mark(ctx.executionId, "begin");
    try {
      const payload = new Uint8Array(await request.arrayBuffer());
      return encodeResult(await handle(payload, ctx));
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      console.error(`ignite: execution ${ctx.executionId} failed:`, error);
      return errorResponse(500, message);
    } finally {
      mark(ctx.executionId, "end");
    }
  };

  // A promise the handler forgot to await must not take the pod down.
  globalThis.addEventListener("unhandledrejection", (event) => {
    console.error("ignite: unhandled rejection:", event.reason);
    event.preventDefault();
  });

  // In a pre-started pod (bootstrap.ts), the server already listens and
  // takes the handler; it drains on SIGTERM itself.
  const prestarted = (globalThis as Record<symbol, unknown>)[PRESTARTED];
  if (typeof prestarted === "function") {
    prestarted(serve);
    return;
  }
  const server = listen(serve);
  const drain = () => {
    // shutdown() refuses new connections and waits for in-flight requests.
    server.shutdown().then(() => Deno.exit(0));
  };
  Deno.addSignalListener("SIGTERM", drain);
  Deno.addSignalListener("SIGINT", drain);
}

function listen(serve: (request: Request) => Promise<Response>): Deno.HttpServer {
  const onListen = () => {};
  const socket = Deno.env.get("IGNITE_SOCKET");
  if (socket) {
    try {
      // A socket file left by an earlier pod would make bind fail.
      Deno.removeSync(socket);
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
    return Deno.serve({ path: socket, onListen }, serve);
  }
  const port = Deno.env.get("IGNITE_PORT");
  if (port) {
    return Deno.serve({ port: Number(port), hostname: "0.0.0.0", onListen }, serve);
  }
  throw new Error("neither IGNITE_SOCKET nor IGNITE_PORT is set");
}

/**
 * Writes a begin or end mark of an execution to stdout and stderr (the pod
 * protocol's "Logs"): in each pipe's own order, the lines a handler prints
 * between the two marks are the execution's, however late the platform
 * reads them.
 */
function mark(executionId: string, event: "begin" | "end"): void {
  if (!executionId) return;
  const record = new TextEncoder().encode(
    `\x1e${JSON.stringify({ execution_id: executionId, event })}\n`,
  );
  Deno.stdout.writeSync(record);
  Deno.stderr.writeSync(record);
}
