// Greets the name in a JSON payload. "ignite" is supplied by the platform
// at build time, whatever the import map above points it at.
import { start } from "ignite";

start((payload, ctx) => {
  const text = new TextDecoder().decode(payload);
  const { name = "world" } = text ? JSON.parse(text) : {};
  return {
    greeting: `Hello, ${name}!`,
    execution_id: ctx.executionId,
    function_id: ctx.functionId,
  };
});
