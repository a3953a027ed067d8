"""The route table, built from the ``google.api.http`` rules of the protos.

At start-up every generated ``*_pb2`` module under the ``dodil`` package is
imported, and every method of every service that carries a
``(google.api.http)`` option (and each of its ``additional_bindings``) becomes
a :class:`Route`. Adding an RPC with an HTTP rule to a proto therefore needs
no gateway code.

Path templates follow ``google/api/http.proto``::

    Template = "/" Segments [ Verb ] ;
    Segments = Segment { "/" Segment } ;
    Segment  = "*" | "**" | LITERAL | Variable ;
    Variable = "{" FieldPath [ "=" Segments ] "}" ;
    Verb     = ":" LITERAL ;

A template compiles to an anchored regular expression over the raw
(still percent-encoded) path; each variable is a named group whose value is
percent-decoded after the match. When several templates match one path the
most specific wins: routes are sorted so that, segment by segment, a literal
beats a single-segment wildcard, which beats ``**``.
"""

from __future__ import annotations

import importlib
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from types import ModuleType
from urllib.parse import unquote

from google.api import annotations_pb2, http_pb2
from google.protobuf.descriptor import FileDescriptor, MethodDescriptor

#: Root package of the generated protobuf modules.
GENERATED_ROOT = "dodil"

_HTTP_METHODS = ("get", "put", "post", "delete", "patch")


class TemplateError(ValueError):
    """A path template that does not follow the grammar."""


@dataclass(frozen=True)
class PathVariable:
    """One ``{field.path=...}`` of a template."""

    #: Field path into the request message, e.g. ``("organization_name",)``.
    field_path: tuple[str, ...]
    #: Name of the regex group that captures it.
    group: str
    #: True when the variable spans several segments (``**``): its value may
    #: contain ``/``.
    multi_segment: bool


@dataclass(frozen=True)
class PathTemplate:
    """A compiled path template."""

    source: str
    regex: re.Pattern[str]
    variables: tuple[PathVariable, ...]
    #: Per segment: 0 literal, 1 single wildcard, 2 multi wildcard; used to
    #: order routes from the most to the least specific.
    specificity: tuple[int, ...]
    #: The template with every variable written as ``{field.path}``, the
    #: form OpenAPI paths use.
    openapi_path: str

    def match(self, raw_path: str) -> dict[tuple[str, ...], str] | None:
        """Variable values (percent-decoded) when ``raw_path`` matches."""
        found = self.regex.fullmatch(raw_path)
        if found is None:
            return None
        values: dict[tuple[str, ...], str] = {}
        for variable in self.variables:
            raw = found.group(variable.group)
            if variable.multi_segment:
                # RFC 6570 reserved expansion: keep an encoded "/" encoded so
                # a value cannot change how many segments it spans.
                values[variable.field_path] = unquote(raw.replace("%2F", "%252F"))
            else:
                values[variable.field_path] = unquote(raw)
        return values


def parse_template(template: str) -> PathTemplate:
    """Compile one ``google.api.http`` path template."""
    if not template.startswith("/"):
        raise TemplateError(f"template {template!r} must start with '/'")
    body, verb = _split_verb(template[1:])
    parser = _TemplateParser(body, template)
    pattern, variables, specificity, openapi = parser.parse()
    if verb:
        pattern += re.escape(":" + verb)
        openapi += ":" + verb
    return PathTemplate(
        source=template,
        regex=re.compile("/" + pattern),
        variables=tuple(variables),
        specificity=tuple(specificity),
        openapi_path="/" + openapi,
    )


def _split_verb(body: str) -> tuple[str, str]:
    # A ":" outside braces in the last segment starts the verb.
    depth = 0
    last_slash = -1
    for index, char in enumerate(body):
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
        elif char == "/" and depth == 0:
            last_slash = index
    colon = body.find(":", last_slash + 1)
    if colon != -1 and "}" not in body[colon:]:
        return body[:colon], body[colon + 1 :]
    return body, ""


class _TemplateParser:
    """Recursive-descent parser of the Segments production."""

    def __init__(self, text: str, source: str) -> None:
        self.text = text
        self.source = source
        self.variables: list[PathVariable] = []

    def parse(self) -> tuple[str, list[PathVariable], list[int], str]:
        parts: list[str] = []
        specificity: list[int] = []
        openapi: list[str] = []
        for segment in self._top_segments():
            if segment.startswith("{"):
                regex, kinds, name = self._variable(segment)
                parts.append(regex)
                specificity.extend(kinds)
                openapi.append("{" + name + "}")
            else:
                regex, kind = self._plain(segment)
                parts.append(regex)
                specificity.append(kind)
                openapi.append(segment)
        return "/".join(parts), self.variables, specificity, "/".join(openapi)

    def _top_segments(self) -> list[str]:
        # Split on "/" outside braces.
        segments: list[str] = []
        depth = 0
        current = ""
        for char in self.text:
            if char == "{":
                depth += 1
            elif char == "}":
                depth -= 1
                if depth < 0:
                    raise TemplateError(f"unbalanced '}}' in {self.source!r}")
            if char == "/" and depth == 0:
                segments.append(current)
                current = ""
            else:
                current += char
        if depth != 0:
            raise TemplateError(f"unbalanced '{{' in {self.source!r}")
        segments.append(current)
        if any(not segment for segment in segments):
            raise TemplateError(f"empty segment in {self.source!r}")
        return segments

    def _plain(self, segment: str) -> tuple[str, int]:
        if segment == "*":
            return "[^/]+", 1
        if segment == "**":
            return ".+", 2
        if any(char in segment for char in "{}*"):
            raise TemplateError(f"bad segment {segment!r} in {self.source!r}")
        return re.escape(segment), 0

    def _variable(self, segment: str) -> tuple[str, list[int], str]:
        if not segment.endswith("}"):
            raise TemplateError(f"bad variable {segment!r} in {self.source!r}")
        inner = segment[1:-1]
        name, _, sub = inner.partition("=")
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*", name):
            raise TemplateError(f"bad field path {name!r} in {self.source!r}")
        sub = sub or "*"
        sub_parts: list[str] = []
        spec: list[int] = []
        multi = False
        for piece in sub.split("/"):
            if not piece or "{" in piece:
                raise TemplateError(f"bad variable {segment!r} in {self.source!r}")
            regex, kind = self._plain(piece)
            multi = multi or kind == 2
            sub_parts.append(regex)
            spec.append(kind)
        group = f"v{len(self.variables)}"
        self.variables.append(
            PathVariable(field_path=tuple(name.split(".")), group=group, multi_segment=multi)
        )
        return f"(?P<{group}>{'/'.join(sub_parts)})", spec, name


@dataclass(frozen=True)
class Route:
    """One HTTP binding of one RPC."""

    #: Upper-case HTTP method.
    http_method: str
    template: PathTemplate
    method: MethodDescriptor
    #: "" (no body), "*" (the whole request) or one top-level field name.
    body: str
    #: "" or a top-level response field to return instead of the whole
    #: response message.
    response_body: str
    #: 0 for the main rule, 1.. for additional_bindings (unique operation ids).
    binding_index: int

    @property
    def grpc_path(self) -> str:
        """``/package.Service/Method``, the gRPC call path."""
        return f"/{self.method.containing_service.full_name}/{self.method.name}"

    @property
    def operation_id(self) -> str:
        """A stable OpenAPI operationId."""
        base = f"{self.method.containing_service.name}_{self.method.name}"
        return base if self.binding_index == 0 else f"{base}_{self.binding_index}"


class RouteTable:
    """All routes, matched most-specific first."""

    def __init__(self, routes: Iterable[Route]) -> None:
        self.routes: list[Route] = sorted(routes, key=_route_order)

    def match(
        self, http_method: str, raw_path: str
    ) -> tuple[Route, dict[tuple[str, ...], str]] | list[str]:
        """The route and its path variables, or the methods allowed on the path.

        An empty list means no route has that path at all (a 404); a
        non-empty one means the path exists for other methods (a 405).
        """
        allowed: list[str] = []
        for route in self.routes:
            values = route.template.match(raw_path)
            if values is None:
                continue
            if route.http_method == http_method:
                return route, values
            allowed.append(route.http_method)
        return sorted(set(allowed))

    def __iter__(self) -> Iterator[Route]:
        return iter(self.routes)

    def __len__(self) -> int:
        return len(self.routes)


def _route_order(route: Route) -> tuple:
    # Literal (0) before single wildcard (1) before multi (2), position by
    # position; a longer template before its prefix.
    return (*route.template.specificity, 3), route.template.source


def routes_for_method(method: MethodDescriptor) -> list[Route]:
    """The routes of one method, empty when it has no HTTP rule."""
    options = method.GetOptions()
    if method.client_streaming or not options.HasExtension(annotations_pb2.http):
        # A client stream has no single HTTP body to transcode.
        return []
    rule = options.Extensions[annotations_pb2.http]
    routes = []
    for index, binding in enumerate([rule, *rule.additional_bindings]):
        http_method, template = _pattern(binding)
        if not template:
            continue
        routes.append(
            Route(
                http_method=http_method,
                template=parse_template(template),
                method=method,
                body=binding.body,
                response_body=binding.response_body,
                binding_index=index,
            )
        )
    return routes


def _pattern(rule: http_pb2.HttpRule) -> tuple[str, str]:
    kind = rule.WhichOneof("pattern")
    if kind is None:
        return "", ""
    if kind == "custom":
        return rule.custom.kind.upper(), rule.custom.path
    if kind in _HTTP_METHODS:
        return kind.upper(), str(getattr(rule, kind))
    return "", ""


def generated_files(root: str = GENERATED_ROOT) -> list[FileDescriptor]:
    """File descriptors of every generated ``*_pb2`` module under ``root``."""
    # The generated tree is made of namespace packages (no __init__.py),
    # which pkgutil does not descend into: walk the directories instead.
    package = importlib.import_module(root)
    names: set[str] = set()
    for base in package.__path__:
        for directory, _, filenames in os.walk(base):
            relative = os.path.relpath(directory, base)
            parts = [root] + ([] if relative == "." else relative.split(os.sep))
            names.update(
                ".".join([*parts, filename[:-3]])
                for filename in filenames
                if filename.endswith("_pb2.py")
            )
    files: list[FileDescriptor] = []
    for name in sorted(names):
        module: ModuleType = importlib.import_module(name)
        files.append(module.DESCRIPTOR)
    return files


def build_route_table(files: Iterable[FileDescriptor] | None = None) -> RouteTable:
    """Routes of every service method with an HTTP rule in ``files``."""
    routes: list[Route] = []
    for file in generated_files() if files is None else files:
        for service in file.services_by_name.values():
            for method in service.methods:
                routes.extend(routes_for_method(method))
    return RouteTable(routes)
