/**
 * The main module of every Deno pod: `deno run ... bootstrap.ts <entry>`,
 * where `<entry>` is the app's entry module. The build copies it into the
 * artifact beside the SDK (`.ignite/sdk/`).
 *
 * Started for an app (`IGNITE_CODE_DIR` is set), it imports the entry
 * module at once, and the module's `start(handle)` serves the app.
 *
 * Started ahead of any app, by the local backend's pre-started pool, it
 * listens on `IGNITE_SOCKET` itself, answers the health probe with 503,
 * loads the SDK, and waits for the one `POST /_ignite/load`
 * (docs/pod-protocol.md). That request gives the app's variables, which
 * join the environment (the pod's own runtime variables win, as when a pod
 * starts with its app); then the entry module is imported, its
 * `start(handle)` hands its request handler to this server instead of
 * listening, and the load is answered 200 — or 500 with the reason the
 * module could not be imported (or never called `start`). Every later
 * request, the health probe included, goes to the app's handler.
 *
 * @module
 */

/** How `start(handle)` finds a pre-started server (see mod.ts). */
const POOL_HOOK = Symbol.for("ignite.prestarted");

type Serve = (request: Request) => Promise<Response>;

/** The body of `POST /_ignite/load`. */
interface LoadRequest {
  code_dir: string;
  function_id: string;
  organization_id?: string;
  version?: number;
  max_concurrency?: number;
  env?: Record<string, string>;
}

const entry = Deno.args[0];
if (!entry) {
  console.error("usage: bootstrap.ts ENTRY_MODULE");
  Deno.exit(2);
}
const entryUrl = new URL(entry, `file://${Deno.cwd()}/`).href;

if (Deno.env.get("IGNITE_CODE_DIR")) {
  await import(entryUrl);
} else {
  await prestarted();
}

async function prestarted(): Promise<void> {
  let app: Serve | null = null;
  let loading = false;

  const load = async (spec: LoadRequest): Promise<Response> => {
    let given: Serve | null = null;
    try {
      applyEnv(spec);
      (globalThis as Record<symbol, unknown>)[POOL_HOOK] = (serve: Serve) => {
        given = serve;
      };
      await import(entryUrl);
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      console.error(`ignite: cannot load the app: ${reason}`);
      return Response.json({ error: `cannot load the app: ${reason}` }, { status: 500 });
    } finally {
      delete (globalThis as Record<symbol, unknown>)[POOL_HOOK];
    }
    if (given === null) {
      const reason = `${entry} did not call start(handle) from "ignite"`;
      console.error(`ignite: cannot load the app: ${reason}`);
      return Response.json({ error: `cannot load the app: ${reason}` }, { status: 500 });
    }
    app = given;
    return Response.json({ ok: true });
  };

  const waiting = async (request: Request): Promise<Response> => {
    const path = new URL(request.url).pathname;
    if (path === "/_ignite/load" && request.method === "POST") {
      if (loading) {
        return Response.json({ error: "an app is loaded already" }, { status: 409 });
      }
      loading = true;
      return await load(await request.json());
    }
    if (path === "/_ignite/health") {
      return Response.json({ ready: false }, { status: 503 });
    }
    return Response.json({ error: "no app loaded" }, { status: 503 });
  };

  const socket = Deno.env.get("IGNITE_SOCKET");
  if (!socket) throw new Error("IGNITE_SOCKET is not set");
  try {
    // A socket file left by an earlier pod would make bind fail.
    Deno.removeSync(socket);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  const server = Deno.serve(
    { path: socket, onListen: () => {} },
    (request) => (app ?? waiting)(request),
  );
  const drain = () => {
    // shutdown() refuses new connections and waits for in-flight requests.
    server.shutdown().then(() => Deno.exit(0));
  };
  Deno.addSignalListener("SIGTERM", drain);
  Deno.addSignalListener("SIGINT", drain);
  // The SDK is compiled now rather than on the cold start's path.
  await import("./mod.ts");
}

/** The app's variables and the platform's about it, under the pod's own. */
function applyEnv(spec: LoadRequest): void {
  const own = Deno.env.toObject();
  for (const [name, value] of Object.entries(spec.env ?? {})) {
    if (!(name in own)) Deno.env.set(name, String(value));
  }
  Deno.env.set("IGNITE_CODE_DIR", spec.code_dir);
  Deno.env.set("IGNITE_FUNCTION_ID", spec.function_id);
  Deno.env.set(
    "IGNITE_ORGANIZATION_ID",
    spec.organization_id || spec.function_id.split("/", 1)[0],
  );
  Deno.env.set("IGNITE_VERSION", String(spec.version ?? 0));
  Deno.env.set("IGNITE_MAX_CONCURRENCY", String(Math.max(1, spec.max_concurrency ?? 1)));
}
