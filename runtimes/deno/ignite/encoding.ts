/**
 * How a handler's result becomes an HTTP response: the same rules as the
 * Python runtime (bytes as is, text as UTF-8, anything else as JSON).
 *
 * @module
 */

/** The response for a handler's (awaited) result. */
export function encodeResult(result: unknown): Response {
  if (result instanceof Uint8Array) {
    // Response accepts any Uint8Array at run time; the cast only narrows
    // the buffer type TypeScript infers.
    return new Response(result as Uint8Array<ArrayBuffer>, {
      headers: { "content-type": "application/octet-stream" },
    });
  }
  if (result instanceof ArrayBuffer) {
    return new Response(new Uint8Array(result), {
      headers: { "content-type": "application/octet-stream" },
    });
  }
  if (typeof result === "string") {
    return new Response(result, { headers: { "content-type": "text/plain; charset=utf-8" } });
  }
  let body: string;
  try {
    // `undefined` (a handler without a return) is sent as JSON null.
    body = JSON.stringify(result ?? null);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    return errorResponse(500, `the handler's result is not JSON-serializable: ${reason}`);
  }
  return new Response(body, { headers: { "content-type": "application/json" } });
}

/** The pod protocol's error shape: `status` with `{"error": message}`. */
export function errorResponse(status: number, message: string): Response {
  return Response.json({ error: message }, { status });
}
