"""ASGI entry point: HTTP through Django, WebSockets through Channels."""

import gc
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatsite.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from chatsite.routing import websocket_urlpatterns  # noqa: E402
from chatsite.wsframes import skip_frame_log_formatting, write_frames_at_once  # noqa: E402
from conversations.claude.client import close_clients_at_shutdown  # noqa: E402
from conversations.recovery import recover_at_start  # noqa: E402

recover_at_start()  # replies a crashed process left `streaming` become `interrupted`
close_clients_at_shutdown()

skip_frame_log_formatting()  # per frame sent (chatsite.wsframes)
write_frames_at_once()

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(URLRouter(websocket_urlpatterns))
        ),
    }
)

# Everything loaded so far (Django, the apps, the SDK) lives as long as the process: leave it
# out of the garbage collector's full passes. Under load those passes stopped the process
# for 140-280 ms at a time (measured at 300 streams: frames then arrived 700-800 ms apart);
# with it frozen they take half as long. The SDK loads its resources on first use: load
# them now so that they are frozen too.
import aiohttp  # noqa: E402, F401  (the SDK's transport: conversations.claude.client)
import anthropic.resources.messages  # noqa: E402, F401
from django.template import engines  # noqa: E402
from django.urls import get_resolver  # noqa: E402

get_resolver().url_patterns  # noqa: B018  the URLconf, imported on the first request else
engines["django"]  # the template tag libraries, likewise

gc.freeze()

# A young collection every 7,000 net allocations of containers instead of 700. At 400-500
# streams the default made 10 young collections a second, ~4 ms each (the socket stack
# leaves reference cycles behind every connection), and a full pass every ~13 s: 1.5-2.5 s
# of the process's CPU in 40 s went to the collector; with 7,000 about half, and the
# longest pause was shorter. 50,000 saved more CPU but its young passes stopped the process
# for up to 140 ms, which showed in c200's TTFT p99 (bench/README.md has the runs).
gc.set_threshold(7_000, 10, 10)
