from django.apps import AppConfig


class OpsConfig(AppConfig):
    name = "ops"
    verbose_name = "Operations"

    def ready(self) -> None:
        from django.core.signals import request_finished

        from ops import logs, metrics  # noqa: F401  metrics: clean the multiprocess dir at start
        from ops.middleware import clear_log_context

        logs.configure_structlog()
        request_finished.connect(clear_log_context, dispatch_uid="ops.clear_log_context")
