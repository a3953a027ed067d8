"""ignite-gateway: the HTTP/JSON edge of Ignite.

A separate process in front of the gRPC server, in the grpc-gateway pattern:
its routes, its JSON mapping and its OpenAPI document all come from the
``google.api.http`` rules and the message descriptors of the protos.

The parts:

* :mod:`.server` — the process: start, listen, drain and stop;
* :mod:`.app` — one gateway's parts and the aiohttp application routing to them;
* :mod:`.channel` — the gRPC channel to the server and a callable per RPC;
* :mod:`.access_log` — request ids, errors as JSON, one log line per request;
* :mod:`.health` — ``/healthz`` and ``/readyz``;
* :mod:`.api_calls` — proto routes served as gRPC calls;
* :mod:`.routes`, :mod:`.transcode`, :mod:`.openapi` — the route table, the
  JSON mapping and the OpenAPI document, from the protos;
* :mod:`.streaming` — server streams as HTTP responses or JSON lines;
* :mod:`.oauth` — the token endpoint's and JWKS document's OAuth shapes;
* :mod:`.app_relay`, :mod:`.app_urls`, :mod:`.cors` — direct app URLs;
* :mod:`.mcp` — apps as MCP tools at ``/mcp``;
* :mod:`.errors`, :mod:`.headers`, :mod:`.metadata`, :mod:`.request_body`,
  :mod:`.json_body`, :mod:`.config` — what those share.

Its logging set-up is the server's, from ``ignite_common.log_setup``.
"""
