import os, time
os.environ.update(DATABASE_URL="postgres://postgres@127.0.0.1:5432/chatsite_billing_dashboard", DEBUG="false", SECRET_KEY="x"*50, STATIC_MANIFEST="false", DATABASE_POOL="false", LOG_LEVEL="WARNING", DJANGO_SETTINGS_MODULE="chatsite.settings", LOGIN_THROTTLE_ENABLED="false")
import django; django.setup()
import datetime as dt
from billing import reports, charts
from django.utils import timezone
today = timezone.now().date()
p = reports.DateRange.month_of(today, data_until=today)
def t(name, f):
    s=time.perf_counter(); r=f(); print(name, round((time.perf_counter()-s)*1000,1)); return r
for _ in range(2):
    by_day=t("by_day", lambda: reports.spend_by_day(p))
    by_model=t("by_model", lambda: reports.spend_by(p,"model"))
    lat=t("latency", lambda: reports.latency_by_day(p))
    t("c1", lambda: charts.spend_by_day_chart(by_day))
    t("c2", lambda: charts.spend_by_model_chart(by_model))
    t("c3", lambda: charts.error_rate_chart(by_day))
    t("c4", lambda: charts.latency_chart(lat))
    t("users", lambda: list(reports.spend_by_user(p)[:51]))
    t("top", lambda: reports.top_conversations(p))
