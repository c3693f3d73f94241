import os, time
os.environ.update(DATABASE_URL="postgres://postgres@127.0.0.1:5432/chatsite_billing_dashboard", DEBUG="false", SECRET_KEY="x"*50, STATIC_MANIFEST="false", DATABASE_POOL="false", LOG_LEVEL="WARNING", DJANGO_SETTINGS_MODULE="chatsite.settings", LOGIN_THROTTLE_ENABLED="false")
import django; django.setup()
from django.db import connection, reset_queries
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.contrib.auth import get_user_model
import sys
c = Client(HTTP_HOST="127.0.0.1"); c.force_login(get_user_model().objects.get(username="bench-admin"))
params = dict(a.split("=") for a in sys.argv[1:])
c.get("/admin/billing/dashboard/", params)
with CaptureQueriesContext(connection) as ctx:
    t=time.perf_counter(); c.get("/admin/billing/dashboard/", params); total=(time.perf_counter()-t)*1000
qs = sorted(ctx.captured_queries, key=lambda q: -float(q["time"]))
print("total ms", round(total), "sql ms", round(sum(float(q["time"]) for q in qs)*1000), len(qs))
for q in qs[:8]: print(round(float(q["time"])*1000), q["sql"][:300])
import cProfile, pstats
pr = cProfile.Profile(); pr.enable(); c.get("/admin/billing/dashboard/", params); pr.disable()
pstats.Stats(pr).sort_stats("cumulative").print_stats(25)
