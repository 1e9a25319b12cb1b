"""OpenTelemetry traces, set up only by the standard ``OTEL_*`` variables.

Tracing is on when ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``..._TRACES_ENDPOINT``) or
``OTEL_TRACES_EXPORTER`` is set and ``OTEL_SDK_DISABLED`` is not ``true``: the official SDK,
the OTLP exporter (http/protobuf), ``OTEL_SERVICE_NAME`` (default ``23-gateway``) and the
SDK's own sampler variables (``OTEL_TRACES_SAMPLER=parentbased_traceidratio``,
``OTEL_TRACES_SAMPLER_ARG=0.1``). Off, nothing is installed and every ``span()`` is a shared
no-op: the hot paths pay one attribute read.

What spans carry is chosen, never copied: route templates (not paths), site names, 23 method
names and statuses, provider names. Never a query string, cookie, token, secret or e-mail
address.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator, Mapping
from typing import Any

log = logging.getLogger("gateway.tracing")

_NOOP = contextlib.nullcontext()


class _State:
    enabled = False
    tracer: Any = None


state = _State()


def configure_tracing(environ: Mapping[str, str] | None = None, exporter: Any = None) -> bool:
    """Install the SDK when the environment asks for it (once per process)."""
    env = os.environ if environ is None else environ
    wanted = exporter is not None or any(
        env.get(name)
        for name in (
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            "OTEL_TRACES_EXPORTER",
        )
    )
    if state.enabled or not wanted or env.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return state.enabled
    from opentelemetry import trace
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    resource = Resource.create({"service.name": env.get("OTEL_SERVICE_NAME") or "23-gateway"})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(exporter or _exporter(env)))
    trace.set_tracer_provider(provider)
    state.tracer = trace.get_tracer("gateway")
    state.enabled = True
    log.info("tracing on", extra={"service": resource.attributes.get("service.name")})
    return True


def _exporter(env: Mapping[str, str]) -> Any:
    if env.get("OTEL_TRACES_EXPORTER", "otlp") == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter()
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter()


def span(name: str, client: bool = False, **attributes: Any) -> Any:
    """A span as a context manager (the shared no-op when tracing is off)."""
    if not state.enabled:
        return _NOOP
    from opentelemetry.trace import SpanKind

    kind = SpanKind.CLIENT if client else SpanKind.INTERNAL
    return state.tracer.start_as_current_span(name, kind=kind, attributes=attributes)


def inject(headers: dict[str, str]) -> dict[str, str]:
    """Add ``traceparent`` for the current span (calls to 23 carry it)."""
    if state.enabled:
        from opentelemetry import propagate

        propagate.inject(headers)
    return headers


def annotate(**attributes: Any) -> None:
    """Set attributes on the current span (when there is one)."""
    if state.enabled:
        from opentelemetry import trace

        trace.get_current_span().set_attributes(attributes)


def ids() -> dict[str, str]:
    """The current trace and span ids, for log lines (empty when there is none)."""
    if not state.enabled:
        return {}
    from opentelemetry import trace

    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return {}
    return {"trace_id": f"{context.trace_id:032x}", "span_id": f"{context.span_id:016x}"}


@contextlib.contextmanager
def server_span(environ: dict[str, Any]) -> Iterator[Any]:
    """One request's server span, continuing an incoming ``traceparent``."""
    from opentelemetry import context, propagate
    from opentelemetry.trace import SpanKind

    carrier = {"traceparent": environ.get("HTTP_TRACEPARENT", "")}
    parent = propagate.extract(carrier) if carrier["traceparent"] else None
    token = context.attach(parent) if parent is not None else None
    method = environ.get("REQUEST_METHOD", "GET")
    try:
        with state.tracer.start_as_current_span(
            method, kind=SpanKind.SERVER, attributes={"http.request.method": method}
        ) as current:
            yield current
    finally:
        if token is not None:
            context.detach(token)
