"""ignite-gateway: the HTTP/JSON edge of Ignite.

A separate process in front of the gRPC server, in the grpc-gateway pattern:
its routes, its JSON mapping and its OpenAPI document all come from the
``google.api.http`` rules and the message descriptors of the protos.
"""
