"""What the server tells operators about itself: Prometheus metrics
(metrics.py) and OpenTelemetry traces (tracing.py).

A layer of its own below core and above ports: core and the adapters
record where things happen by calling it, and only this package names
``prometheus_client`` or ``opentelemetry`` (an import contract says so), so
swapping either touches one package.
"""
