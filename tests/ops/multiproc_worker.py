"""A process in prometheus-client multiprocess mode, driven line by line on stdin.

python -m tests.ops.multiproc_worker N: counts N rate-limit rejections, starts one stream,
prints "ready"; then "scrape" prints /metrics' exposition and an END line, "exit" exits.
"""

import sys

import django

django.setup()

from ops import metrics  # noqa: E402

for _ in range(int(sys.argv[1])):
    metrics.record_rate_limited("user")
metrics.stream_started()
print("ready", flush=True)
for line in sys.stdin:
    if line.strip() == "scrape":
        print(metrics.exposition()[0].decode() + "END", flush=True)
    else:
        break
