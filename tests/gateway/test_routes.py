"""Routes come from the descriptors: templates, ordering, and a service the
gateway has never seen, served with no code of its own."""

from __future__ import annotations

import uuid
from typing import Any

import aiohttp
import grpc
import pytest
from aiohttp import web
from google.api import annotations_pb2
from google.protobuf import descriptor_pb2, descriptor_pool
from google.protobuf.descriptor import FileDescriptor

from ignite_gateway.app import Gateway
from ignite_gateway.config import GatewayConfig
from ignite_gateway.routes import TemplateError, build_route_table, parse_template
from ignite_gateway.transcode import message_class


def test_single_segment_variables() -> None:
    template = parse_template("/v1/app/{org}/{app}")
    assert template.match("/v1/app/acme/greet") == {("org",): "acme", ("app",): "greet"}
    assert template.match("/v1/app/acme") is None
    assert template.match("/v1/app/acme/greet/x") is None
    assert template.match("/v1/app/a%20b/c%2Fd") == {("org",): "a b", ("app",): "c/d"}


def test_multi_segment_nested_and_verb() -> None:
    template = parse_template("/v1/{name=projects/*/files/**}:download")
    assert template.match("/v1/projects/p/files/a/b.txt:download") == {
        ("name",): "projects/p/files/a/b.txt"
    }
    assert template.match("/v1/projects/p/other/a:download") is None
    assert template.openapi_path == "/v1/{name}:download"
    nested = parse_template("/v1/{app.meta.id}")
    assert nested.match("/v1/x") == {("app", "meta", "id"): "x"}
    wild = parse_template("/v1/*/x/**")
    assert wild.match("/v1/a/x/b/c") == {}


@pytest.mark.parametrize("bad", ["v1/x", "/v1//x", "/v1/{x", "/v1/{x}}", "/v1/{a b}", "/v1/a*b"])
def test_bad_templates_are_refused(bad: str) -> None:
    with pytest.raises(TemplateError):
        parse_template(bad)


def test_compute_service_routes() -> None:
    table = build_route_table()
    names = {route.method.name for route in table}
    assert {"CreateApp", "GetApp", "Invoke", "ReadLogs", "PublishDraft"} <= names
    # ReadLogs has an additional binding: two routes, distinct operation ids.
    logs = [route for route in table if route.method.name == "ReadLogs"]
    assert sorted(route.operation_id for route in logs) == [
        "ComputeService_ReadLogs",
        "ComputeService_ReadLogs_1",
    ]
    found = table.match("GET", "/v1/ignite/app/acme/greet/versions/3")
    assert not isinstance(found, list)
    route, values = found
    assert route.method.name == "GetVersion"
    assert values[("version",)] == "3"
    assert table.match("PUT", "/v1/ignite/app/acme") == ["GET", "POST"]
    assert table.match("GET", "/v2/nothing") == []


def test_literal_beats_variable() -> None:
    # Both templates match /v1/things/special; the literal one is more specific.
    file = _widget_file(
        extra_rpcs=[("GetSpecial", "/v1/things/special"), ("GetThing", "/v1/things/{name}")]
    )
    table = build_route_table([file])
    found = table.match("GET", "/v1/things/special")
    assert not isinstance(found, list)
    assert found[0].method.name == "GetSpecial"
    found = table.match("GET", "/v1/things/other")
    assert not isinstance(found, list)
    assert found[0].method.name == "GetThing"


def _widget_file(extra_rpcs: list[tuple[str, str]] | None = None) -> FileDescriptor:
    """A proto file made at run time: a service no gateway code mentions."""
    package = f"widgets{uuid.uuid4().hex[:8]}.v1"
    proto = descriptor_pb2.FileDescriptorProto(
        name=f"{package.replace('.', '/')}/widgets.proto",
        package=package,
        syntax="proto3",
        dependency=["google/api/annotations.proto"],
    )
    request = proto.message_type.add(name="GetWidgetRequest")
    request.field.add(name="shelf", number=1, type=9, label=1, json_name="shelf")
    request.field.add(name="widget_id", number=2, type=9, label=1, json_name="widgetId")
    request.field.add(name="size", number=3, type=3, label=1, json_name="size")  # int64
    request.field.add(name="tags", number=4, type=9, label=3, json_name="tags")  # repeated
    request.field.add(
        name="filter", number=5, type=11, label=1, json_name="filter", type_name=".{0}.Filter"
    )
    kind = proto.enum_type.add(name="Kind")
    kind.value.add(name="KIND_UNSPECIFIED", number=0)
    kind.value.add(name="KIND_ROUND", number=1)
    filter_message = proto.message_type.add(name="Filter")
    filter_message.field.add(name="color", number=1, type=9, label=1, json_name="color")
    filter_message.field.add(
        name="kind", number=2, type=14, label=1, json_name="kind", type_name=".{0}.Kind"
    )
    filter_message.field.add(name="exact", number=3, type=8, label=1, json_name="exact")
    widget = proto.message_type.add(name="Widget")
    widget.field.add(name="full_name", number=1, type=9, label=1, json_name="fullName")
    widget.field.add(name="size", number=2, type=3, label=1, json_name="size")
    for message in proto.message_type:
        for field in message.field:
            if field.type_name:
                field.type_name = field.type_name.replace("{0}", package)
    service = proto.service.add(name="WidgetService")
    rpcs = extra_rpcs or [("GetWidget", "/v9/shelves/{shelf}/widgets/{widget_id}")]
    for name, path in rpcs:
        method = service.method.add(
            name=name,
            input_type=f".{package}.GetWidgetRequest",
            output_type=f".{package}.Widget",
        )
        method.options.Extensions[annotations_pb2.http].get = path
    # annotations.proto must be in the pool for the dependency to resolve.
    assert annotations_pb2.DESCRIPTOR.name == "google/api/annotations.proto"
    return descriptor_pool.Default().Add(proto)


async def test_a_new_service_needs_no_gateway_code() -> None:
    file = _widget_file()
    service = file.services_by_name["WidgetService"]
    method = service.methods_by_name["GetWidget"]
    request_class = message_class(method.input_type)
    widget_class = message_class(method.output_type)

    async def get_widget(request: object, context: grpc.aio.ServicerContext) -> object:
        echo: Any = request
        described = [echo.shelf, echo.widget_id, *echo.tags, echo.filter.color]
        described += [str(echo.filter.kind), str(echo.filter.exact)]
        return widget_class(full_name="/".join(described), size=echo.size * 2)

    server = grpc.aio.server()
    server.add_generic_rpc_handlers(
        [
            grpc.method_handlers_generic_handler(
                service.full_name,
                {
                    "GetWidget": grpc.unary_unary_rpc_method_handler(
                        get_widget,
                        request_deserializer=request_class.FromString,
                        response_serializer=lambda message: message.SerializeToString(),
                    )
                },
            )
        ]
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    gateway = Gateway(GatewayConfig(grpc_target=f"127.0.0.1:{port}"), files=[file])
    runner = web.AppRunner(gateway.application(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        async with aiohttp.ClientSession() as session:
            query = (
                "size=21&tags=a&tags=b&filter.color=red&filter.kind=KIND_ROUND&filter.exact=true"
            )
            async with session.get(f"{url}/v9/shelves/top/widgets/w1?{query}") as resp:
                assert resp.status == 200
                assert await resp.json() == {"fullName": "top/w1/a/b/red/1/True", "size": "42"}
            async with session.get(f"{url}/openapi.json") as resp:
                document = await resp.json()
        operation = document["paths"]["/v9/shelves/{shelf}/widgets/{widget_id}"]["get"]
        names = {parameter["name"] for parameter in operation["parameters"]}
        assert names == {
            "shelf",
            "widget_id",
            "size",
            "tags",
            "filter.color",
            "filter.kind",
            "filter.exact",
        }
    finally:
        await runner.cleanup()
        await server.stop(None)
